"""The image race's frame types and clock, torch-free (the web layer's fakes and renderers import them without
loading torch); the race itself is `models.image.race`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IMAGE_SIZE = 28
AUTOREGRESSIVE, DIFFUSION = "ar", "diffusion"
# a short bar in the upper left, two rows thick: an early, confident, wrong stroke for most digits
MISTAKE_PIXELS = tuple(row * IMAGE_SIZE + column for row in (7, 8) for column in range(5, 13))
MISTAKE_SHARE = 0.2  # the DDPM gets the stroke after this share of its steps (t near 800 of 1000 for DDIM 50)


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


def mistake_step(steps: int) -> int:
    """The DDPM step after which the forced stroke is in its state."""
    return max(1, round(MISTAKE_SHARE * steps))
