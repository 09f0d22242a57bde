"""`python -m app [--host H] [--port P]`: serve with the websocket settings the engine was built for.

- ws="websockets-sansio" chosen explicitly (uvicorn >= 0.52.1: send backpressure, clean close);
- per-message deflate off (frames are small and already compact; compression costs CPU per client);
- timeout_graceful_shutdown set, so SIGTERM closes open sockets (code 1012) and exits in seconds.
Flags override THEATER_HOST / THEATER_PORT.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from app.settings import get_settings


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
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=max(65536, settings.max_message_bytes * 4),
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        log_level="info",
    )


if __name__ == "__main__":
    main()
