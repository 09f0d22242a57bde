"""A real uvicorn on a free port, in a thread, serving the app with fake (or given) models."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
import websockets
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.__main__ import TheaterServer, server_config
from app.backends.fakes import FakeImage, FakeImageRace, FakeRace, FakeText
from app.backends.interface import Backends
from app.backends.live_twins import LiveTwins
from app.engine.local import Engine
from app.main import create_app
from app.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_of(client: TestClient) -> FastAPI:
    """The app a TestClient drives, as the FastAPI it is (TestClient types it as any ASGI app)."""
    assert isinstance(client.app, FastAPI)
    return client.app


@dataclass
class Live:
    port: int
    server: uvicorn.Server
    backends: Backends
    app: FastAPI

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, kind: str, fmt: str = "json") -> str:
        suffix = "?format=json" if fmt == "json" else ""
        return f"ws://127.0.0.1:{self.port}/ws/{kind}{suffix}"

    @property
    def engine(self) -> Engine:
        return self.app.state.engine

    @property
    def text(self) -> FakeText:
        return self.backends.text  # type: ignore[return-value]

    @property
    def image(self) -> FakeImage:
        return self.backends.image  # type: ignore[return-value]


def fake_backends() -> Backends:
    """Every demo's fake: text, image (and the grid and samplers over it), race, image race."""
    return Backends(text=FakeText(), image=FakeImage(), race=FakeRace(), image_race=FakeImageRace(), trainer=LiveTwins.small())


def backends_with(text: Any = None, image: Any = None) -> Backends:
    """Every demo's fake, but the text or image backend given (a fake with a step time, a stand-in sampler)."""
    return Backends(text=text or FakeText(), image=image or FakeImage(), race=FakeRace(), image_race=FakeImageRace())


@contextlib.contextmanager
def live_server(
    step_seconds: float = 0.0, backends: Backends | None = None, use_torch: bool = False, **overrides: Any
) -> Iterator[Live]:
    """`backends`: the models to serve (default: fakes sleeping `step_seconds` a step); `use_torch`: the engine sets
    torch threads and inference mode in its workers, as the real server does."""
    port = free_port()
    settings = Settings(**{"port": port, "models": "fake", **overrides})
    backends = backends or Backends(
        text=FakeText(step_seconds),
        image=FakeImage(step_seconds),
        race=FakeRace(step_seconds),
        image_race=FakeImageRace(step_seconds),
    )
    app = create_app(settings, loader=lambda _s: backends, use_torch=use_torch)
    config = server_config(app, settings, host="127.0.0.1", log_level="warning", timeout_graceful_shutdown=2)
    server = TheaterServer(config)  # the same server settings as `python -m app`
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield Live(port, server, backends, app)
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Result:
    messages: list[dict[str, Any]]
    code: int | None
    reason: str
    first_at: float | None = None  # seconds from send to the first message
    total: float = 0.0

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "frame"]

    @property
    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    @property
    def last(self) -> dict[str, Any]:
        return self.messages[-1]


async def exchange(url: str, request: Any, **connect: Any) -> Result:
    """Send one request (dict -> JSON, str/bytes as is) and read until the server closes."""
    async with websockets.connect(url, max_size=None, **connect) as ws:
        started = time.perf_counter()
        if request is not None:
            with contextlib.suppress(websockets.ConnectionClosed):  # the server may refuse before reading
                await ws.send(json.dumps(request) if isinstance(request, dict) else request)
        messages: list[dict[str, Any]] = []
        first_at = None
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                if first_at is None:
                    first_at = time.perf_counter() - started
                messages.append(json.loads(raw))
        return Result(messages, ws.close_code, ws.close_reason or "", first_at, time.perf_counter() - started)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def strip_timing(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in f.items() if k != "ms_per_step"} for f in frames]
