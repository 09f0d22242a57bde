"""The live twins' request (`/train`): which text, how long to train, which seed. Torch-free, so the web layer
imports it freely; `models.text.live_train` does the training.

A text is a preset (whole TinyStories stories, committed under `presets/`) or the visitor's own (`preset="own"`
with `text`). Bounds pydantic can state live here; the web layer's limits (how many seconds, how many bytes of
pasted text) are settings (`app.demos.limits`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from models.requests import SEED_MAX, StrictRequest

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
# name -> (file, the menu's words); the sizes are printed from the files themselves
PRESETS: dict[str, tuple[str, str]] = {
    "stories-10k": ("stories-10k.txt", "TinyStories, 10 KB"),
    "stories-30k": ("stories-30k.txt", "TinyStories, 30 KB"),
    "stories-100k": ("stories-100k.txt", "TinyStories, 100 KB"),
}
OWN = "own"  # the visitor's own text, in `text`
TEXT_FIELDS = ("preset", "text")  # what the run trains on: a page drops both when one is refused
PresetName = Literal["stories-10k", "stories-30k", "stories-100k", "own"]
DEFAULT_PRESET: PresetName = "stories-10k"
DEFAULT_SECONDS = 90
SECONDS_MAX = 600  # the settings may lower it (`max_train_seconds`), never raise it past this
TEXT_BYTES_MAX = 60_000  # likewise (`max_train_text_bytes`): a pasted text travels in the URL and the socket message

HELD_OUT_SHARE = 0.1  # the end of the text, never trained on
# Bytes a window holds (`LiveConfig.context`). 32, not 64: on the 10 KB preset in 90 s the diffusion model's best
# held-out NELBO was 2.64 with 32-byte windows and 3.10 with 64 (the byte frequencies alone: 3.14), while the twin's
# best was 2.07 and 2.05 (docs/live-train.md has every setting tried)
CONTEXT = 32
MIN_TEXT_BYTES = 6 * (CONTEXT + 1)  # two windows held out and four to train on (`split_text`)


# No docstring: pydantic would put it in the published JSON schema.
class TrainRequest(StrictRequest):
    preset: PresetName = DEFAULT_PRESET
    text: str = ""  # read only with preset "own"
    seconds: int = Field(DEFAULT_SECONDS, ge=1, le=SECONDS_MAX)  # the run's wall-clock budget, evaluations included
    seed: int = Field(0, ge=0, le=SEED_MAX)


@lru_cache(maxsize=len(PRESETS))
def preset_text(name: str) -> str:
    return (PRESETS_DIR / PRESETS[name][0]).read_text(encoding="utf-8")


def training_text(request: TrainRequest) -> str:
    """The text a request trains on: the preset's, or the visitor's own."""
    return request.text if request.preset == OWN else preset_text(request.preset)


def train_problem(request: TrainRequest) -> tuple[str, str] | None:
    """(field, message) for a text that cannot be what the request says, before any limit is looked at."""
    if request.preset == OWN and not request.text.strip():
        return "text", "text is empty: paste a text to train on (preset 'own'), or pick a preset"
    if request.preset != OWN and request.text:
        return "text", f"text is only read with preset 'own'; preset '{request.preset}' trains on its own stories"
    return None


class SplitError(ValueError):
    """A text too short to split into training and held-out windows."""


def split_text(text: str, context: int = CONTEXT) -> tuple[bytes, bytes]:
    """(training bytes, held-out bytes): the last `HELD_OUT_SHARE` of the text (at least two windows) is held out."""
    data = text.encode("utf-8")
    held = max(2 * (context + 1), int(len(data) * HELD_OUT_SHARE))
    if len(data) - held < 4 * (context + 1):
        raise SplitError(
            f"the text is {len(data):,} bytes: at least {held + 4 * (context + 1):,} are needed to hold out "
            f"{held:,} and train on the rest"
        )
    return data[:-held], data[-held:]


TURN_PATIENCE = 3  # points after the best
TURN_RISE = 0.01  # each of them at least 1% above it: a noisy plateau is not a turn


def turning_point(values: list[float], patience: int = TURN_PATIENCE, rise: float = TURN_RISE) -> int | None:
    """The index of the best (lowest) value once the curve has turned up: the last `patience` values all at least
    `rise` (a share) above it; else None."""
    best = min(range(len(values)), key=values.__getitem__, default=None)
    if best is None or len(values) - 1 - best < patience:
        return None
    return best if all(v >= values[best] * (1 + rise) for v in values[-patience:]) else None


def summary(points: Sequence[Any]) -> dict[str, Any]:
    """Each model's best held-out loss and its epoch, its last, whether (and after which epoch) it turned up, and
    whether it was still improving at the end; `points` are `live_train.TrainPoint`s (or their recorded fields)."""
    out: dict[str, Any] = {"steps": points[-1].step, "epochs": round(points[-1].epochs, 1), "seconds": points[-1].seconds}
    for name in ("ar", "diffusion"):
        values = [getattr(p, f"{name}_held_out") for p in points]
        best = min(range(len(values)), key=values.__getitem__)
        turn = turning_point(values)
        out |= {
            f"{name}_best": values[best],
            f"{name}_best_epoch": round(points[best].epochs, 1),
            f"{name}_last": values[-1],
            f"{name}_turned_at_epoch": round(points[turn].epochs, 1) if turn is not None else None,
            f"{name}_still_improving": best == len(values) - 1,
        }
    return out


def byte_frequency_loss(train: bytes, held_out: bytes) -> float:
    """Nats per byte of the held-out text under the training bytes' own frequencies (add-one smoothed): what a model
    that learned nothing but how often each byte occurs would score, the floor a curve must get under to show more."""
    counts = Counter(train)
    total = len(train) + 256
    return -sum(math.log((counts[b] + 1) / total) for b in held_out) / max(len(held_out), 1)
