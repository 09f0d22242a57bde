"""`python -m app`: serve with the websocket settings the engine was built for.

- ws="websockets-sansio" chosen explicitly (uvicorn >= 0.52.1: send backpressure, clean close);
- per-message deflate off (frames are small and already compact; compression costs CPU per client);
- timeout_graceful_shutdown set, so SIGTERM closes open sockets (code 1012) and exits in seconds.
"""

from __future__ import annotations

import uvicorn

from app.settings import get_settings


def main() -> None:
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
