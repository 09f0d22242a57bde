"""What `/train` shows besides its settings: the preset menu with each text's measured size, the run's boxes before
its first point, the two networks' shared facts, and the committed measurement of the default preset (three seeds),
read from `docs/live-train-10k.json` at request time so the page states what the file holds."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from app.backends.interface import Backends
from app.demos.train_record import RECORDING, recording
from app.render.train import summary_rows
from app.why.data_files import data_url
from models.text.live_request import CONTEXT, OWN, PRESETS, TrainRequest, preset_text, split_text, summary


def preset_options() -> list[tuple[str, str]]:
    """The menu: each preset with its size and how much of it is held out, measured from the file."""
    options = []
    for name, (_file, label) in PRESETS.items():
        train, held_out = split_text(preset_text(name), CONTEXT)
        options.append((name, f"{label}: {len(train):,} bytes to train on, {len(held_out):,} held out"))
    return [*options, (OWN, "your own text (paste it below)")]


def measured_rows() -> SimpleNamespace | None:
    """The default preset's committed runs: per seed, each model's best held-out loss, its epoch and the end."""
    path = Path(RECORDING)
    data = recording() if path.is_file() else None
    if not data:
        return None
    return _rows(path.stat().st_mtime_ns)


@lru_cache(maxsize=2)
def _rows(_mtime_ns: int) -> SimpleNamespace:
    data = recording() or {}
    seeds = []
    for run in data.get("runs", []):
        measured = summary([SimpleNamespace(**p) for p in run["points"]])
        seeds.append(
            SimpleNamespace(seed=run["seed"], wall=f"{run['wall_s']:.0f}", rows=summary_rows(measured), summary=measured)
        )
    return SimpleNamespace(bytes=f"{data.get('bytes', 0):,}", seconds=data.get("seconds"), seeds=seeds, url=data_url(RECORDING))


def train_parts(request: TrainRequest, backends: Backends) -> dict[str, Any]:
    idle = "Press Space or Train: both models start from random weights and the curves grow as they learn."
    return {
        "race_lanes": SimpleNamespace(seconds=request.seconds, idle=idle),  # the placeholder's boxes
        "train": SimpleNamespace(
            presets=preset_options(),
            facts=backends.trainer.facts(),
            measured=measured_rows(),
            own=request.preset == OWN,
        ),
    }
