"""Shared by the benchmarks: start `python -m app` on a free port, talk to it, summarise numbers."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout: float = 10) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class Base(str):
    """The server's base URL (http://...), and its process id (to read its CPU time)."""

    pid: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(**env: object) -> Iterator[Base]:
    """`python -m app` in a subprocess with THEATER_* settings; yields its base URL (http://...).

    The server gets a session of its own, as a deployed server would: where the kernel groups CPU time by
    session (Linux autogroup), the benchmark's clients then compete with it as another program, not as
    threads of the same group; in that case they would take their CPU out of the server's share."""
    port = free_port()
    environment = {**os.environ, **{f"THEATER_{k.upper()}": str(v) for k, v in env.items()}}
    # The server's log goes to a file, not a pipe: nobody reads a pipe while the benchmark runs, and once
    # its 64 KiB filled (uvicorn logs every websocket), the server's next log line would block its loop.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "--port", str(port)],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        base = Base(f"http://127.0.0.1:{port}")
        base.pid = process.pid
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError("server exited: " + log.read().decode(errors="replace")[-4000:])
                try:
                    get_json(base + "/readyz")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


async def stream(url: str, request: dict[str, Any]) -> dict[str, Any]:
    """One run: time to first frame, total time, frames, the server's own sampler time (the sum of the
    frames' `ms_per_step`), and how it ended."""
    started = time.perf_counter()
    first = None
    frames = 0
    sampler_ms = 0.0
    last_type = None
    queued_at = eta = None  # when the first "queued" message came, and the wait it announced
    async with websockets.connect(url, max_size=None, open_timeout=60, close_timeout=5) as ws:
        await ws.send(json.dumps(request))
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                message = json.loads(raw)
                last_type = message["type"]
                if last_type == "queued" and queued_at is None:
                    queued_at, eta = time.perf_counter() - started, message.get("eta_seconds")
                if last_type == "frame":
                    frames += 1
                    sampler_ms += message.get("ms_per_step", 0.0)
                    if first is None:
                        first = time.perf_counter() - started
        code = ws.close_code
    return {
        "eta": eta,
        "waited": (first - queued_at) if (first is not None and queued_at is not None) else None,
        "first": first,
        "total": time.perf_counter() - started,
        "frames": frames,
        "sampler_ms": sampler_ms,
        "ok": last_type == "done" and code == 1000,
        "code": code,
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, separators=(",", ":")))
