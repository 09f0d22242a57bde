"""How a client's mistake is told: the websocket close codes, and `RequestError` with the reason a person reads."""

from __future__ import annotations

from enum import IntEnum


class Close(IntEnum):
    """Websocket close codes we use (RFC 6455 + IANA registry)."""

    DONE = 1000
    UNSUPPORTED_DATA = 1003  # binary frame
    POLICY = 1008  # invalid request, limits, refused origin
    TOO_BIG = 1009
    SERVER_FAULT = 1011
    SHUTDOWN = 1012
    BUSY = 1013


class RequestError(ValueError):
    """A client mistake. `message` is shown to the person; `code` closes the socket; `field` names the
    request field at fault, where there is one (a page drops just that field from its URL)."""

    def __init__(self, message: str, code: Close = Close.POLICY, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
