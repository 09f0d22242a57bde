"""The image race's committed recovery measurement, torch-free: how often each model still ends as the digit asked
for after the forced stroke, per timing of the stroke in the DDPM, with 95% Wilson intervals; and how much ink
real digits put where the stroke goes. `models.image.evaluate_race` writes the file; the race page reads it at
request time (`load_recovery`), so a re-run shows without a code change."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.image.request import MISTAKE_TIMINGS, MistakeTiming

RECOVERY_FILE = Path(__file__).resolve().parents[2] / "docs" / "image-race-recovery.json"
Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a binomial rate (sound at 0 and at `trials` successes, unlike the normal
    approximation, which gives an interval of width 0 there)."""
    if trials < 1:
        raise ValueError(f"an interval needs at least one trial, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in 0..{trials}, got {successes}")
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    # at 0 or all successes one end is exactly 0 or 1; the formula gets there only up to rounding
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Outcome:
    """One model's samples under one condition: how many ended as the digit asked for, and the stroke's ink."""

    samples: int
    matches: int  # classified as the requested digit by the held-out classifier
    low: float  # 95% Wilson interval of matches / samples
    high: float
    ink_left: float  # mean share of full ink in the stroke's 16 pixels of the final image (0..1)

    @property
    def rate(self) -> float:
        return self.matches / self.samples

    @classmethod
    def measured(cls, matches: int, samples: int, ink_left: float) -> Outcome:
        low, high = wilson_interval(matches, samples)
        return cls(samples, matches, round(low, 4), round(high, 4), round(ink_left, 4))

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "matches": self.matches,
            "rate": round(self.rate, 4),
            "low": self.low,
            "high": self.high,
            "ink_left": self.ink_left,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(int(data["samples"]), int(data["matches"]), float(data["low"]), float(data["high"]), float(data["ink_left"]))


@dataclass(frozen=True)
class TimingRow:
    """The stroke entering the DDPM at one timing: where that falls in a DDIM run, and both models' outcomes (the
    PixelCNN's stroke does not move with the timing: its row is the same samples at every timing)."""

    timing: MistakeTiming
    share: float  # of the DDPM's steps
    step: int  # the stroke is in the state after this step
    timestep: int  # ... which is at this timestep
    signal: float  # sqrt(alpha_bar) there: the share of the clean image (the stroke) the state keeps
    ddpm: Outcome
    pixel_ar: Outcome


@dataclass(frozen=True)
class Recovery:
    steps: int  # the DDPM's DDIM steps
    guidance: float
    per_digit: int
    seed: int
    checkpoints: dict[str, str]  # name -> sha256 of its weights
    baseline: dict[str, Outcome]  # "ddpm", "pixel_ar": the same seeds without the stroke
    timings: tuple[TimingRow, ...]
    region_split: str  # the real digits the region's ink was measured on
    region_ink: tuple[float, ...]  # per class 0-9: mean share of full ink real digits put in the stroke's pixels
    region_ink_all: float
    command: str

    def row(self, timing: MistakeTiming) -> TimingRow | None:
        return next((row for row in self.timings if row.timing == timing), None)


def recovery_to_dict(recovery: Recovery) -> dict[str, Any]:
    return {
        "what": (
            "The image race's forced stroke: how often each model still ends as the digit asked for (the held-out "
            "digit classifier's reading of the final image; 95% Wilson intervals) and the share of the stroke's ink "
            "left in it, per timing of the stroke in the DDPM; the PixelCNN paints the stroke at its rows at every "
            "timing. region_ink: the mean share of full ink real digits put in the stroke's pixels, per class 0-9."
        ),
        "command": recovery.command,
        "checkpoints": recovery.checkpoints,
        "ddim_steps": recovery.steps,
        "guidance": recovery.guidance,
        "per_digit": recovery.per_digit,
        "seed": recovery.seed,
        "baseline": {name: outcome.to_dict() for name, outcome in recovery.baseline.items()},
        "timings": [
            {
                "timing": row.timing,
                "share": row.share,
                "step": row.step,
                "timestep": row.timestep,
                "signal": row.signal,
                "ddpm": row.ddpm.to_dict(),
                "pixel_ar": row.pixel_ar.to_dict(),
            }
            for row in recovery.timings
        ],
        "region_ink": {
            "split": recovery.region_split,
            "per_class": list(recovery.region_ink),
            "all": recovery.region_ink_all,
        },
    }


def recovery_from_dict(data: dict[str, Any]) -> Recovery:
    rows = []
    for row in data["timings"]:
        timing = row["timing"]
        if timing not in MISTAKE_TIMINGS:
            raise ValueError(f"unknown timing {timing!r}: expected one of {', '.join(MISTAKE_TIMINGS)}")
        rows.append(
            TimingRow(
                timing,
                float(row["share"]),
                int(row["step"]),
                int(row["timestep"]),
                float(row["signal"]),
                Outcome.from_dict(row["ddpm"]),
                Outcome.from_dict(row["pixel_ar"]),
            )
        )
    region = data["region_ink"]
    return Recovery(
        steps=int(data["ddim_steps"]),
        guidance=float(data["guidance"]),
        per_digit=int(data["per_digit"]),
        seed=int(data["seed"]),
        checkpoints={str(k): str(v) for k, v in data["checkpoints"].items()},
        baseline={name: Outcome.from_dict(outcome) for name, outcome in data["baseline"].items()},
        timings=tuple(rows),
        region_split=str(region["split"]),
        region_ink=tuple(float(v) for v in region["per_class"]),
        region_ink_all=float(region["all"]),
        command=str(data["command"]),
    )


_cache: dict[Path, tuple[float, Recovery | None]] = {}


def load_recovery(path: Path = RECOVERY_FILE) -> Recovery | None:
    """The committed measurement, re-read whenever the file changes (None when it is missing); a file that does not
    parse raises, so a broken commit shows in the tests rather than as an empty table."""
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return None
    cached = _cache.get(path)
    if cached is not None and cached[0] == modified:
        return cached[1]
    recovery = recovery_from_dict(json.loads(path.read_text()))
    _cache[path] = (modified, recovery)
    return recovery
