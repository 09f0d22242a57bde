"""Export a finished run: its JSON trace (every message as the sockets send it) and an animated GIF.

The endpoints (`app/routes/export.py`) parse the page's query string as the pages do, then get the run's
messages from the engine exactly as a websocket client would (`collect`): a cached run replays at once, a run in
flight is joined, anything else starts a job (and goes to the replay cache when done). The trace format is
docs/trace-format.md; the GIF is drawn by `app/export/gif.py`.

Query policy: where a page drops an invalid value and runs with that field's default (with a note), an export
answers 400 and names the value: a download must be the run its link describes, never a different one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from app.backends.interface import Backends
from app.demos.errors import RequestError
from app.demos.protocol import Request, from_query
from app.demos.query import to_query
from app.demos.registry import DEMOS
from app.engine.interface import Busy, Failed, Queued, Runs, ShuttingDown, Unavailable, busy_message
from app.render.message import Rendered, dump_json
from app.render.playback import MAX_SPEED, MIN_SPEED, SPEEDS
from app.settings import Settings
from app.web.security import origin_allowed
from models.checkpoints import read_manifest

FORMAT = "diffusion-theater-trace"
VERSION = 1
EXTENSIONS = ("json", "gif")
RETRY_AFTER_SECONDS = 5
DEFAULT_WEIGHTS = "model.safetensors"
WEIGHTS = {"image-ddpm": "unet/model.safetensors"}  # checkpoints whose weights file is elsewhere


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


# ---------------------------------------------------------------------------------------------------------
# The trace


def manifest_sha256(folder: Path, file: str) -> str | None:
    """The sha256 that `folder`'s SHA256SUMS lists for `file` (None: no manifest, or no such line)."""
    try:
        sha256 = read_manifest(folder).get(file)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return sha256 if sha256 and re.fullmatch(r"[0-9a-f]{64}", sha256) else None


def describe_model(part: Any, checkpoint_dir: Path) -> dict[str, Any]:
    """One model of a run: its name and the sha256 of its weights from its checkpoint's manifest.

    `part` is a backend (a real one holds its loaded model in `.model`) or a loaded model itself (the race holds
    its two). Fakes and untrained models were not loaded from a checkpoint: sha256 null."""
    model = getattr(part, "model", part)
    name = str(getattr(model, "name", None) or getattr(part, "name", "unknown"))
    trained = bool(getattr(model, "trained", False))
    sha256 = manifest_sha256(checkpoint_dir / name, WEIGHTS.get(name, DEFAULT_WEIGHTS)) if trained else None
    return {"name": name, "sha256": sha256, "trained": trained}


def describe_models(kind: str, backends: Backends, checkpoint_dir: Path) -> list[dict[str, Any]]:
    """The models behind a run, as its registry entry lists them: a backend or a loaded model (`describe_model`), or
    a checkpoint's name (a model whose output rides on the frames, such as the digit classifier's probabilities)."""
    described = []
    for part in DEMOS[kind].models(backends):
        if isinstance(part, str):
            sha256 = manifest_sha256(checkpoint_dir / part, DEFAULT_WEIGHTS)
            described.append({"name": part, "sha256": sha256, "trained": sha256 is not None})
        else:
            described.append(describe_model(part, checkpoint_dir))
    return described


def trace_json(
    kind: str, request: Request, models: list[dict[str, Any]], messages: Sequence[Rendered], created: datetime | None = None
) -> str:
    """The trace as JSON text. Each message is its html variant as sent (the JSON fields plus `content`, and
    `target` / `swap` where not the default), spliced in as it is: no parsing or re-serialising. Rendering
    an html variant still pending (a json-only run joined in flight) runs Jinja: call it off the loop."""
    head = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "request": dict(sorted(request.model_dump(mode="json").items())),
        "query": urlencode(to_query(request)),
        "models": models,
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
    return dump_json(head)[:-1] + ',"messages":[' + ",".join(message.html for message in messages) + "]}"


def filename(kind: str, request: Request, extension: str) -> str:
    """`theater-race-image-seed3.gif`: the kind's path as a name, with the run's seed."""
    return f"theater-{kind.replace('/', '-')}-seed{request.model_dump().get('seed', 0)}.{extension}"
