"""`python -m app [--host H] [--port P]`: serve with the websocket settings the engine was built for.

This is the only supported way to serve the app (the tests' live server uses the same `server_config`):
- ws="websockets-sansio" chosen explicitly (uvicorn >= 0.52.1: send backpressure, clean close);
- per-message deflate off (frames are small and already compact; compression costs CPU per client);
- ws_max_size = `Settings.ws_max_size`: a message up to that size reaches the app, which answers one over
  `max_message_bytes` with an error message and close 1009; a larger one is cut by the server's websocket
  layer with 1009 and no message (a bare `uvicorn app.main:app` would buffer up to 16 MiB instead);
- timeout_graceful_shutdown set, so SIGTERM closes open sockets (code 1012) and exits in seconds;
- `TheaterServer` marks the app as draining at the first SIGTERM/SIGINT, so `/readyz` answers 503.
Flags override THEATER_HOST / THEATER_PORT.
"""

from __future__ import annotations

import argparse
import os
from types import FrameType
from typing import Any

import uvicorn

from app.healthcheck import announce_port
from app.settings import Settings, get_settings


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,
        "ws_max_size": settings.ws_max_size,
        "timeout_graceful_shutdown": settings.graceful_shutdown_seconds,
        "log_level": "info",
    }
    return uvicorn.Config(app, **{**options, **overrides})


class TheaterServer(uvicorn.Server):
    """uvicorn's server, plus a draining flag on the app at the first exit signal (`/readyz` -> 503)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state = getattr(self.config.app, "state", None)
        if state is not None:
            state.draining = True
        super().handle_exit(sig, frame)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app", description="Serve Diffusion Theater.")
    parser.add_argument("--host", help="interface to bind (default: THEATER_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: THEATER_PORT or 8000)")
    args = parser.parse_args(argv)
    if args.host:
        os.environ["THEATER_HOST"] = args.host
    if args.port is not None:
        os.environ["THEATER_PORT"] = str(args.port)
    get_settings.cache_clear()
    settings = get_settings()
    from app.main import create_app  # after the environment is final: the app reads its settings once

    announce_port(settings.port)  # for the health check (app/healthcheck.py), which cannot see --port
    TheaterServer(server_config(create_app(settings), settings)).run()


if __name__ == "__main__":
    main()
