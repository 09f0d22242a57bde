"""The learning-rate schedule every trainer here uses: linear warmup, then cosine decay to a floor."""

from __future__ import annotations

import math


def warmup_cosine(step: float, peak: float, warmup: int, steps: int, floor: float) -> float:
    """The rate at `step`: rising linearly to `peak` over `warmup` steps, then falling along a half cosine to
    `floor` at `steps` (and staying there)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))
