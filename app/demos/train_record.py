"""Recorded live-twins runs: the committed measurement `docs/live-train-10k.json` (written by
`python -m models.text.live_train`, the same code a live run uses) holds every point of three seeds of the default
preset and budget. The prewarm replays the default request's recording into the replay cache, so the first visitor
sees a finished run at once instead of waiting 90 s for a core; any other request trains live."""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from app.backends.interface import Backends
from app.demos.producers import recorded_train_run
from app.engine.interface import Producer
from app.why.data_files import DATA_ROOT
from models.text.live_request import TrainRequest

RECORDING = DATA_ROOT / "live-train-10k.json"
PRESET = "stories-10k"
COMMAND = "python -m models.text.live_train --data train.txt --bytes 10000 --seconds 90 --seeds 0 1 2"


@lru_cache(maxsize=1)
def recording() -> dict[str, Any] | None:
    try:
        return json.loads(RECORDING.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def recorded_points(request: TrainRequest, backends: Backends) -> tuple[list[Any], str] | None:
    """The recorded points of exactly this request and this server's experiment (preset, budget, seed and network
    configuration all equal), and a line saying where they come from; None when there is no such recording."""
    data = recording()
    trainer = backends.trainer
    if data is None or request.preset != PRESET or trainer.config or trainer.max_steps is not None:
        return None
    if data.get("seconds") != request.seconds or data.get("config") != asdict(trainer.live_config()):
        return None
    run = next((r for r in data.get("runs", []) if r.get("seed") == request.seed), None)
    if run is None:
        return None
    points = [SimpleNamespace(**point) for point in run["points"]]
    source = (
        f"This run was recorded by the same code, seed and budget ({COMMAND}, committed as "
        f"docs/live-train-10k.json) and replays at once; another seed, budget or text trains live on this server."
    )
    return points, source


def recorded_producer(backends: Backends, request: TrainRequest) -> Producer | None:
    found = recorded_points(request, backends)
    return recorded_train_run(request, *found) if found is not None else None
