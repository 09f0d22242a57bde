"""A finished run as its JSON trace: every message as the sockets sent it, with the request, the models behind it
(their checkpoints' sha256) and when it was written. The format is docs/trace-format.md; the GIF is drawn by
`app/export/gif.py` and the demos' renderers. Getting the run's messages is `app/demos/export_request.py`'s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel

from app.render.message import Rendered, dump_json
from app.web.query import to_query
from models.checkpoints import read_manifest

FORMAT = "diffusion-theater-trace"
VERSION = 1
DEFAULT_WEIGHTS = "model.safetensors"
WEIGHTS = {"image-ddpm": "unet/model.safetensors"}  # checkpoints whose weights file is elsewhere


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


def describe_models(parts: Sequence[Any], checkpoint_dir: Path) -> list[dict[str, Any]]:
    """The models behind a run, as its registry entry lists them (`Demo.models`): a backend or a loaded model
    (`describe_model`), or a checkpoint's name (a model whose output rides on the frames, such as the digit
    classifier's probabilities)."""
    described = []
    for part in parts:
        if isinstance(part, str):
            sha256 = manifest_sha256(checkpoint_dir / part, DEFAULT_WEIGHTS)
            described.append({"name": part, "sha256": sha256, "trained": sha256 is not None})
        else:
            described.append(describe_model(part, checkpoint_dir))
    return described


def trace_json(
    kind: str, request: BaseModel, models: list[dict[str, Any]], messages: Sequence[Rendered], created: datetime | None = None
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


def filename(kind: str, request: BaseModel, extension: str) -> str:
    """`theater-race-image-seed3.gif`: the kind's path as a name, with the run's seed."""
    return f"theater-{kind.replace('/', '-')}-seed{request.model_dump().get('seed', 0)}.{extension}"
