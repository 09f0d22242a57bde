"""What `/train` shows besides its settings: the preset menu with each text's measured size, the run's boxes before
its first point, the two networks' shared facts, and the committed measurement of the default preset (three seeds),
read from `docs/live-train-10k.json` at request time so the page states what the file holds."""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from app.backends.interface import Backends
from app.demos.train_record import PRESET, RECORDING, recording
from app.render.train import summary_rows
from app.why.data_files import data_url
from models.text.live_request import (
    CONTEXT,
    MIN_TEXT_BYTES,
    OWN,
    PRESETS,
    TrainRequest,
    byte_frequency_loss,
    preset_text,
    split_text,
    summary,
)


@lru_cache(maxsize=1)
def preset_options() -> tuple[tuple[str, str], ...]:
    """The menu: each preset with its size and how much of it is held out, measured from the file."""
    options = []
    for name, (_file, label) in PRESETS.items():
        train, held_out = split_text(preset_text(name), CONTEXT)
        options.append((name, f"{label}: {len(train):,} bytes to train on, {len(held_out):,} held out"))
    return (*options, (OWN, "your own text (paste it below)"))


@lru_cache(maxsize=1)
def measured_rows() -> SimpleNamespace | None:
    """The default preset's committed runs: per seed, each model's best held-out loss, its epoch and the end (read once,
    as `train_record.recording` reads the file once)."""
    data = recording()
    if not data:
        return None
    seeds = []
    for run in data.get("runs", []):
        measured = summary([SimpleNamespace(**p) for p in run["points"]])
        rows = summary_rows(measured)
        seeds.append(SimpleNamespace(seed=run["seed"], wall=f"{run['wall_s']:.0f}", rows=rows, summary=measured))
    return SimpleNamespace(
        bytes=f"{data.get('bytes', 0):,}",
        seconds=data.get("seconds"),
        seeds=seeds,
        url=data_url(RECORDING),
        sentence=measured_sentence([s.summary for s in seeds], floor_of(PRESET)),
    )


def floor_of(preset: str) -> float:
    return byte_frequency_loss(*split_text(preset_text(preset), CONTEXT))


def _span(values: list[float], digits: int = 1) -> str:
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if round(low, digits) == round(high, digits) else f"{low:.{digits}f} to {high:.{digits}f}"


def measured_sentence(runs: list[dict[str, Any]], floor: float) -> str:
    """What the committed seeds show, each figure computed from them: whether and when the twin turned up, where the
    diffusion model's best came and whether it turned, how far it stayed above the twin's best and the byte floor."""
    if not runs:
        return ""
    count = len(runs)
    twin_turned = [r for r in runs if r["ar_turned_at_epoch"] is not None]
    twin = (
        f"The twin turned up in {len(twin_turned)} of {count} seeds, after epoch "
        f"{_span([r['ar_turned_at_epoch'] for r in twin_turned])}, and ended "
        f"{_span([r['ar_last'] - r['ar_best'] for r in twin_turned], 2)} nats per byte above its best."
        if twin_turned
        else f"The twin did not turn up in any of the {count} seeds."
    )
    diffusion_turned = sum(r["diffusion_turned_at_epoch"] is not None for r in runs)
    gap = [r["diffusion_best"] - r["ar_best"] for r in runs]
    under = [floor - r["diffusion_best"] for r in runs]
    alone = f"what the bytes' frequencies alone score ({floor:.3f})"
    if all(u >= 0.1 for u in under):
        floor_words = f"{_span(under, 2)} under {alone}: it learned more than which bytes are common"
    elif all(u >= 0 for u in under):
        floor_words = f"within {max(under):.2f} of {alone}: it learned little more than which bytes are common"
    else:
        floor_words = f"not under {alone}"
    lower_at_end = sum(r["diffusion_last"] < r["ar_last"] for r in runs)
    diffusion = (
        f"The diffusion model's best came at epoch {_span([r['diffusion_best_epoch'] for r in runs])}; it turned up in "
        f"{diffusion_turned} of {count} and ended at most {max(r['diffusion_last'] - r['diffusion_best'] for r in runs):.3f} "
        f"above its best, {floor_words}. Its best stayed {_span(gap, 2)} above the twin's best; at the end its held-out "
        f"loss was below the twin's in {lower_at_end} of {count} seeds."
    )
    return f"{twin} {diffusion}"


def train_parts(request: TrainRequest, backends: Backends) -> dict[str, Any]:
    idle = "Press Space or Train: both models start from random weights and the curves grow as they learn."
    return {
        "race_lanes": SimpleNamespace(seconds=request.seconds, idle=idle),  # the placeholder's boxes
        "train": SimpleNamespace(
            presets=preset_options(),
            facts=backends.trainer.facts(),
            measured=measured_rows(),
            min_bytes=MIN_TEXT_BYTES,
        ),
    }
