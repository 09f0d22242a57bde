"""An export's request: the page's query string parsed as the pages parse it, checked, and the run's messages
got from the engine exactly as a websocket client gets them (`collect`): a cached run replays at once, a run in
flight is joined, anything else starts a job (and goes to the replay cache when done).

Query policy: where a page drops an invalid value and runs with that field's default (with a note), an export
answers 400 and names the value: a download must be the run its link describes, never a different one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from app.backends.interface import Backends
from app.demos.protocol import Request, from_query
from app.demos.registry import DEMOS
from app.engine.interface import Busy, Failed, Queued, Runs, ShuttingDown, Unavailable, busy_message
from app.errors import RequestError
from app.render.message import Rendered
from app.settings import Settings
from app.web.playback import MAX_SPEED, MIN_SPEED, SPEEDS
from app.web.security import origin_allowed

EXTENSIONS = ("json", "gif")
RETRY_AFTER_SECONDS = 5


class ExportError(Exception):
    """An answer other than the export: HTTP status, the message a person reads, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _retry() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


# ---------------------------------------------------------------------------------------------------------
# The request


def split_name(name: str) -> tuple[str, str]:
    """'text.json' -> ('text', 'json'); anything else -> ExportError 404 naming what exists."""
    kind, _, extension = name.rpartition(".")
    if kind not in DEMOS or extension not in EXTENSIONS:
        raise ExportError(
            404, f"no export named {name[:60]!r}: use /export/<kind>.json or /export/<kind>.gif with kind {', '.join(DEMOS)}"
        )
    return kind, extension


def _problem(note: str) -> str:
    """A page's note ("ignored steps='x': ...; using 50") as the problem it is when nothing falls back."""
    return re.sub(r"; using .*$", "", re.sub(r"^ignored ", "", note))


def request_from_query(kind: str, query: Mapping[str, str], settings: Settings) -> Request:
    """The page's query string -> its request, as the pages parse it (`from_query`); any value a page would
    drop -> 400. Parameters that are not request fields (`speed`, `autoplay`) are left alone, as on the pages."""
    request, notes = from_query(kind, query, settings)
    if notes:
        raise ExportError(400, "invalid query: " + "; ".join(_problem(note) for note in notes))
    return request


def parse_speed(raw: str | None) -> float:
    """The player's speed (its menu: 0.25x to 4x); absent -> 1."""
    if raw is None or raw == "":
        return 1.0
    try:
        speed = float(raw)
    except ValueError:
        speed = math.nan
    if not math.isfinite(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise ExportError(
            400,
            f"invalid query: speed={raw[:20]!r} should be a number from {MIN_SPEED:g} to "
            f"{MAX_SPEED:g} (the player's speeds: {', '.join(f'{s:g}' for s in SPEEDS)})",
        )
    return speed


def check_site(headers: Mapping[str, str], settings: Settings) -> None:
    """Another site's page may not make its visitors' browsers compute runs here (an `<img src>` of a 1000-step
    GIF): as the websockets refuse other origins, a cross-site fetch that is not a person following a link is
    refused (403) unless its Origin is listed in `allowed_origins`. Programs (no Sec-Fetch-Site header), our
    own pages and links followed from anywhere are served."""
    site = headers.get("sec-fetch-site")
    if site in (None, "same-origin", "none") or headers.get("sec-fetch-mode") == "navigate":
        return
    origin = headers.get("origin")
    if origin is None or not origin_allowed(origin, headers.get("host"), settings.allowed_origins):
        raise ExportError(403, "exports are not served to other sites' pages: link to this URL instead")


def check(backends: Backends, request: Request) -> None:
    """What the loaded model cannot serve (prompt + blanks over its context, a bad infill race): 422."""
    try:
        backends.check(request)
    except RequestError as error:
        raise ExportError(422, error.message) from None


# ---------------------------------------------------------------------------------------------------------
# The run's messages, from the engine


async def collect(engine: Runs, kind: str, backends: Backends, request: Request) -> list[Rendered]:
    """Every message of the run (its frames, then done), as an html websocket client receives them.

    Cancelling this (the client left) leaves the job: if nobody else watches it, it stops within a step."""
    try:
        subscription = engine.run(kind, request, html=True)
    except Busy as busy:
        raise ExportError(
            503,
            busy_message(busy.wait, busy.retry_after, engine.max_wait_seconds),
            {"Retry-After": str(max(1, round(busy.retry_after)))},
        ) from None
    except ShuttingDown:
        raise ExportError(503, "the server is restarting; try again in a moment", _retry()) from None
    messages: list[Rendered] = []
    with subscription:
        async for event in subscription.events():
            if isinstance(event, Queued):
                continue
            if isinstance(event, Failed):
                if event.refused:  # the model cannot serve this request: the client's to change
                    raise ExportError(422, event.message)
                if isinstance(event, Unavailable):  # busy or the run queue unreachable (the Redis engine)
                    raise ExportError(503, event.message, {"Retry-After": str(max(1, round(event.retry_after)))})
                raise ExportError(503, event.message, _retry())
            messages.append(event)
    return messages
