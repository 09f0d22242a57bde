"""The image race's frame types and clock, torch-free (the web layer's fakes and renderers import them without
loading torch); the race itself is `models.image.race`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.image.request import DEFAULT_MISTAKE_TIMING, MISTAKE_TIMINGS, MistakeTiming

IMAGE_SIZE = 28
AUTOREGRESSIVE, DIFFUSION = "ar", "diffusion"
# A short bar in the upper left, two rows thick (rows 8-9, columns 6-13 counted from 1), painted at full ink. Real
# digits do put ink there: on train10k the region holds 2% (1s) to 32% (7s) of full ink on average, 21% over all
# classes (`region_ink` in docs/image-race-recovery.json, per class). The stroke is wrong by its weight, full ink
# across all 16 pixels, not by where it is.
MISTAKE_PIXELS = tuple(row * IMAGE_SIZE + column for row in (7, 8) for column in range(5, 13))


@dataclass(frozen=True)
class ImageLane:
    name: str  # AUTOREGRESSIVE or DIFFUSION
    image: np.ndarray = field(repr=False)  # uint8 (H, W): the AR canvas, or the DDPM's x_t
    guess: np.ndarray | None = field(repr=False)  # uint8 (H, W): the DDPM's predicted x0 (None for the AR lane)
    passes: int
    total_passes: int
    wall_ms: float
    cursor: int | None  # AR: the next pixel to paint (None when done); DDPM: None
    digit_probabilities: tuple[float, ...]  # the classifier on what the lane shows (AR: the canvas so far)
    forced: tuple[int, ...] = ()  # pixels of the forced mistake present in this lane's state

    @property
    def finished(self) -> bool:
        return self.passes >= self.total_passes


@dataclass(frozen=True)
class ImageRaceFrame:
    step: int  # frame index, 0 = both lanes blank / pure noise
    total: int
    clock: int  # forward passes of the clock at this frame
    lanes: tuple[ImageLane, ...]


def ticks(ddpm_steps: int, ar_passes: int) -> list[int]:
    """The clock values a frame is emitted at: every DDPM pass, every AR row's end, and the AR lane's last pass."""
    return sorted({*range(1, ddpm_steps + 1), *range(IMAGE_SIZE, ar_passes + 1, IMAGE_SIZE), ar_passes})


def mistake_step(steps: int, timing: MistakeTiming = DEFAULT_MISTAKE_TIMING) -> int:
    """The DDPM step after which the forced stroke is in its state: `MISTAKE_TIMINGS[timing]` of its steps, at
    least one step in and, when the run has two steps or more, at least one step before the end (so a step is
    left to act on it). A one-step run gets it after its only step, in the final image."""
    if steps < 1:
        raise ValueError(f"a DDPM run has at least 1 step, got {steps}")
    return max(1, min(round(MISTAKE_TIMINGS[timing] * steps), steps - 1))
