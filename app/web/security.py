"""Security headers on every HTTP response, and the websocket Origin check.

CSP: scripts and styles come only from our own static files (no inline script, no inline style);
images may be data: URLs (the frames are base64 PNGs); `frame-ancestors` decides who may embed us.
CORSMiddleware does not cover websockets, so `origin_allowed` is checked before a socket is accepted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(frame_ancestors: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp, frame_ancestors: str = "*") -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", content_security_policy(frame_ancestors).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """No Origin: a non-browser client (a notebook, a script): allowed. Same host: allowed. Else the list."""
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    listed = {o.strip().rstrip("/").lower() for o in allowed}
    if "*" in listed or origin in listed:
        return True
    parts = urlsplit(origin)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc == (host or "").lower()
