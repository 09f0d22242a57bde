"""The websocket endpoints: check the origin, read one request, hand it to the engine, send its frames.

    client                         server
      | -- handshake (Origin) -->  |  refused (403) unless same-origin, listed, or absent
      | -- {request JSON} ------>  |  validated; errors -> {"type":"error"} + close code
      | <-- {"type":"queued"} ---  |  while waiting for a slot
      | <-- {"type":"frame"} ----  |  one per denoising step, as computed
      | <-- {"type":"done"} -----  |  then close 1000

Two tasks per socket: `pump` sends the job's frames at the socket's own pace; `watch` keeps reading, so a
vanished client is noticed even when a send would not raise, and extra messages are answered or limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Iterator

from fastapi import APIRouter, WebSocket

from app.backends.interface import Backends
from app.demos.protocol import Request, close_reason, parse_request
from app.demos.registry import DEMOS, Demo
from app.engine.interface import Busy, Failed, Queued, Runs, RunSubscription, ShuttingDown, Unavailable, busy_message
from app.errors import Close, RequestError
from app.render.message import Rendered
from app.render.notices import render_error, render_queued
from app.routes.deps import BackendsDep, EngineDep, SettingsDep
from app.settings import Settings
from app.web.security import origin_allowed

log = logging.getLogger("theater.stream")
router = APIRouter(tags=["stream"])


class ClientCounter:
    """Open sockets per client address. The default limit is high: a lecture hall shares one NAT address."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, address: str) -> Iterator[int]:
        self.counts[address] += 1
        try:
            yield self.counts[address]
        finally:
            self.counts[address] -= 1
            if self.counts[address] <= 0:
                del self.counts[address]


class Gone(Exception):
    """The client went away."""


class Connection:
    def __init__(self, ws: WebSocket, fmt: str, settings: Settings) -> None:
        self.ws = ws
        self.fmt = fmt
        self.settings = settings
        self._send_lock = asyncio.Lock()
        self._arrivals: deque[float] = deque()

    # ----- sending -----

    async def send(self, message: Rendered) -> None:
        text = message.html if self.fmt == "html" else message.json
        async with self._send_lock:
            try:
                await self.ws.send_text(text)
            except Exception as error:  # disconnected mid-send: the client is gone, not a server fault
                raise Gone from error

    async def fail(self, message: str, code: Close) -> None:
        """Tell the person what went wrong, then close with a code that says whether to retry."""
        with contextlib.suppress(Gone):
            await self.send(render_error(message))
        await self.close(code, message)

    async def close(self, code: Close, reason: str = "") -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=int(code), reason=close_reason(reason))

    # ----- receiving -----

    async def receive(self) -> str | bytes:
        try:
            message = await self.ws.receive()
        except Exception as error:  # receive after a disconnect
            raise Gone from error
        if message["type"] == "websocket.disconnect":
            raise Gone
        self._count_arrival()
        if message.get("text") is not None:
            return message["text"]
        return message.get("bytes") or b""

    def _count_arrival(self) -> None:
        now = time.monotonic()
        self._arrivals.append(now)
        while self._arrivals and now - self._arrivals[0] > 1.0:
            self._arrivals.popleft()
        limit = self.settings.max_messages_per_second
        if len(self._arrivals) > limit:
            raise RequestError(f"too many messages: the limit is {limit} per second per connection")

    async def first_request(self, kind: str) -> Request:
        idle = self.settings.idle_seconds
        try:
            raw = await asyncio.wait_for(self.receive(), timeout=idle)
        except TimeoutError:
            raise RequestError(f"no request received within {idle:g} seconds") from None
        return parse_request(kind, raw, self.settings)

    async def watch(self) -> None:
        """Runs beside `pump`: returns when the client leaves; answers (or limits) extra messages."""
        while True:
            raw = await self.receive()
            if isinstance(raw, bytes):
                raise RequestError("binary messages are not accepted", Close.UNSUPPORTED_DATA)
            await self.send(render_error("one request per connection: a run is already streaming here; open a new connection"))

    async def pump(self, subscription: RunSubscription, engine: Runs) -> tuple[Close, str]:
        """Send the run's messages; returns how to close (code, reason)."""
        async for event in subscription.events():
            if isinstance(event, Queued):
                await self.send(render_queued(event.position, event.eta))
            elif isinstance(event, Failed):
                await self.send(render_error(event.message))
                if isinstance(event, Unavailable):  # busy, no workers, the queue unreachable: try again later
                    return Close.BUSY, event.message
                if event.refused:  # the model cannot serve this request: the client's to fix, not ours
                    return Close.POLICY, "the model cannot serve this request"
                return (Close.SHUTDOWN if engine.closing else Close.SERVER_FAULT), "stopped"
            else:
                await self.send(event)
        return Close.DONE, "done"


async def serve(ws: WebSocket, kind: str, settings: Settings, engine: Runs, backends: Backends, clients: ClientCounter) -> None:
    if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), settings.allowed_origins):
        log.info("refused websocket from origin %r", ws.headers.get("origin"))
        await ws.close(code=Close.POLICY)  # before accept: the handshake is answered with HTTP 403
        return
    fmt = ws.query_params.get("format", "html")
    address = ws.client.host if ws.client else "unknown"
    with clients.hold(address) as open_here:
        await ws.accept()
        conn = Connection(ws, fmt, settings)
        if fmt not in ("html", "json"):
            await conn.fail(f"unknown format {fmt[:20]!r}: use format=html (default) or format=json", Close.POLICY)
            return
        limit = settings.max_connections_per_client
        if open_here > limit:
            await conn.fail(f"too many connections from your address: the limit is {limit}", Close.POLICY)
            return
        try:
            request = await conn.first_request(kind)
            backends.check(request)  # e.g. prompt + blanks must fit the loaded model's context
        except Gone:
            return
        except RequestError as error:
            await conn.fail(error.message, error.code)
            return
        try:
            subscription = engine.run(kind, request, html=fmt == "html")
        except Busy as busy:
            await conn.fail(busy_message(busy.wait, busy.retry_after, engine.max_wait_seconds), Close.BUSY)
            return
        except ShuttingDown:
            await conn.fail("the server is restarting; try again in a moment", Close.SHUTDOWN)
            return
        with subscription:
            await _stream(conn, subscription, engine)


async def _stream(conn: Connection, subscription: RunSubscription, engine: Runs) -> None:
    pump = asyncio.create_task(conn.pump(subscription, engine))
    watch = asyncio.create_task(conn.watch())
    try:
        await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, watch):
            task.cancel()
        await asyncio.gather(pump, watch, return_exceptions=True)
    if pump.done() and not pump.cancelled() and pump.exception() is None:
        code, reason = pump.result()
        await conn.close(code, reason)
        return
    if watch.done() and not watch.cancelled():
        error = watch.exception()
        if isinstance(error, RequestError):
            await conn.fail(error.message, error.code)
            return
        if error is not None and not isinstance(error, Gone):
            log.error("websocket watcher failed: %r", error)
            await conn.close(Close.SERVER_FAULT, "server fault")
            return
    pump_error = pump.exception() if pump.done() and not pump.cancelled() else None
    if pump_error is not None and not isinstance(pump_error, Gone):
        log.error("websocket sender failed: %r", pump_error)
        await conn.close(Close.SERVER_FAULT, "server fault")


def _add_socket(demo: Demo) -> None:
    """`/ws/<kind>` for each demo of the registry: one handler, the kind bound."""
    kind = demo.kind

    async def socket(ws: WebSocket, settings: SettingsDep, engine: EngineDep, backends: BackendsDep) -> None:
        await serve(ws, kind, settings, engine, backends, ws.app.state.clients)

    router.add_api_websocket_route(demo.socket_path, socket, name=f"ws_{demo.route_name}")


for _demo in DEMOS.values():
    _add_socket(_demo)
