"""The real entry point (`python -m app`) in a subprocess: serves, and drains on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import websockets

from app.settings import REPO_ROOT
from tests.app.live import free_port


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not become ready")


def test_sigterm_closes_sockets_with_1012_and_exits_within_5_seconds() -> None:
    port = free_port()
    env = {**os.environ, "THEATER_MODELS": "fake", "THEATER_FAKE_STEP_MS": "100", "THEATER_GRACEFUL_SHUTDOWN_SECONDS": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(port, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            assert json.loads(response.read()) == {"status": "ok"}

        async def main() -> tuple[int | None, list[dict], float]:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/text?format=json") as ws:
                await ws.send(json.dumps({"length": 100, "steps": 100}))
                messages = [json.loads(await ws.recv())]
                process.send_signal(signal.SIGTERM)
                sent = time.monotonic()
                try:
                    async for raw in ws:
                        messages.append(json.loads(raw))
                except websockets.ConnectionClosed:
                    pass
                return ws.close_code, messages, time.monotonic() - sent

        code, messages, took = asyncio.run(main())
        assert code == 1012 and took < 3
        assert messages[0]["type"] == "frame" and all(m["type"] != "done" for m in messages)
        process.wait(timeout=5)
        output = process.stdout.read().decode() if process.stdout else ""
        assert "Traceback" not in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
