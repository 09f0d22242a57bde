"""`python -m app.healthcheck`: exit 0 when this machine's server answers `/healthz`, else 1 (the image's
HEALTHCHECK).

Two things make it ask the right server: it never goes through a proxy (Docker puts the client's proxy settings
into every container's environment, and urllib would send even a loopback request there), and it asks the port
the server announced at start-up (`python -m app` writes it to `PORT_FILE`, so `--port` is honoured), falling back
to THEATER_PORT, then 8000.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

DEFAULT_PORT = 8000
TIMEOUT_SECONDS = 4.0


def port_file() -> Path:
    """Where `python -m app` announces its port (THEATER_PORT_FILE overrides; /tmp is writable under --read-only
    with --tmpfs /tmp)."""
    return Path(os.environ.get("THEATER_PORT_FILE") or Path(tempfile.gettempdir()) / "theater-port")


def announce_port(port: int) -> None:
    """Best effort: a server that cannot write the file still serves; the check then falls back."""
    with contextlib.suppress(OSError):
        port_file().write_text(f"{port}\n")


def server_port() -> int:
    try:
        return int(port_file().read_text().strip())
    except (OSError, ValueError):
        return int(os.environ.get("THEATER_PORT") or DEFAULT_PORT)


def healthy(port: int) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy, whatever the environment says
    try:
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT_SECONDS) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def main() -> None:
    sys.exit(0 if healthy(server_port()) else 1)


if __name__ == "__main__":
    main()
