"""A client that reads nothing for a while, over a real socket: others still get their frames at once, and
the server holds no more than a bounded write buffer for it (the run's frames stay in the one shared job).

The slow client is a raw TCP socket with a tiny receive buffer that speaks just enough websocket to send its
request; it then stops reading, so the kernel buffers fill and uvicorn's transport pauses the sender.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from tests.app.live import Live, exchange, live_server, run

# What one long run sends in html format (fake model, 256 tokens, 256 steps): ~15 MB, far more than the
# kernel's socket buffers on both ends can absorb, so the server's sender must wait for this client.
LONG = {"prompt": "", "length": 256, "steps": 256, "seed": 1}  # fills the fake model's context of 256
HIGH_WATER = 64 * 1024  # asyncio's default transport high-water mark (uvicorn keeps it)


class RawClient:
    """A websocket client that reads only when told to."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: caps the TCP window
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_text(self, text: str) -> None:
        payload = text.encode()
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def messages(self) -> list[dict[str, object]]:
        """Read every message until the server's close frame."""
        out: list[dict[str, object]] = []
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", self._read(8))
            payload = self._read(length)
            if first & 0x0F == 0x8:  # close
                return out
            out.append(json.loads(payload))

    def close(self) -> None:
        self.sock.close()


def ws_connections(live: Live) -> list[WebSocketsSansIOProtocol]:
    """The server's websocket connections (app/__main__.py runs uvicorn's websockets-sansio protocol)."""
    return [c for c in live.server.server_state.connections if isinstance(c, WebSocketsSansIOProtocol)]


def test_a_client_that_reads_nothing_delays_no_one_and_holds_a_bounded_buffer() -> None:
    with live_server(step_seconds=0.001, max_length=256) as live:
        slow = RawClient(live.port, "/ws/text")  # html format: the largest messages
        try:
            slow.send_text(json.dumps(LONG))
            deadline = time.monotonic() + 30
            while live.engine.jobs_started < 1 or live.engine.running:  # the slow client's run computes in full
                assert time.monotonic() < deadline, "the slow client's run did not finish computing"
                time.sleep(0.05)

            # another client, while the slow one still reads nothing: all its frames, promptly
            started = time.perf_counter()
            fast = run(exchange(live.ws("text", fmt="html"), {"length": 16, "steps": 16, "seed": 2}))
            assert fast.types == ["frame"] * 17 + ["done"] and fast.code == 1000
            assert time.perf_counter() - started < 5

            # the slow socket is stalled, and the server buffers at most the high-water mark plus one message
            job = next(iter(live.engine._cache.values()))
            largest = max(len(m.html) for m in job.frames)
            (slow_conn,) = ws_connections(live)
            buffered = slow_conn.transport.get_write_buffer_size()
            assert buffered <= HIGH_WATER + largest + 1024, buffered
            assert job.nbytes > 10 * (HIGH_WATER + largest)  # the run is far bigger: it was not copied per socket

            # once it reads again, it gets the whole run, in order, and a clean close
            messages = slow.messages()
            assert [m["type"] for m in messages] == ["frame"] * 257 + ["done"]
            assert [m["step"] for m in messages[:-1]] == list(range(257))
        finally:
            slow.close()


def test_a_slow_client_that_leaves_frees_its_connection() -> None:
    with live_server(step_seconds=0.001, max_length=256) as live:
        slow = RawClient(live.port, "/ws/text")
        slow.send_text(json.dumps(LONG))
        deadline = time.monotonic() + 30
        while live.engine.jobs_started < 1 or live.engine.running:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert len(ws_connections(live)) == 1
        slow.close()  # leaves without reading: the stalled sender must notice and let go
        while ws_connections(live):
            assert time.monotonic() < deadline, "the server kept the stalled connection"
            time.sleep(0.05)
        assert run(exchange(live.ws("text"), {"length": 4, "steps": 2})).code == 1000
