"""The forward process on a real digit, in numpy: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.

The noise eps is seeded by the digit's index alone, so (index, t) is always the same picture: the forward page
draws it, and "denoise from here" starts the reverse process from exactly that picture. Torch-free.
"""

from __future__ import annotations

import numpy as np

from models.image.data import to_uint8


def forward_noise(index: int, shape: tuple[int, ...] = (28, 28)) -> np.ndarray:
    """The fixed Gaussian noise of held-out digit no. `index` (float64)."""
    return np.random.default_rng(index).standard_normal(shape)


def noised_values(image: np.ndarray, noise_level: float, eps: np.ndarray) -> np.ndarray:
    """uint8 x_0 -> float64 x_t in model range, for noise level sqrt(1 - alpha_bar_t)."""
    x0 = image.astype(np.float64) / 127.5 - 1
    return np.sqrt(1 - noise_level * noise_level) * x0 + noise_level * eps


def noised(image: np.ndarray, schedule: np.ndarray, t: int, index: int) -> tuple[np.ndarray, float]:
    """uint8 (28, 28) x_0 -> (uint8 x_t, sqrt(1 - alpha_bar_t)); `schedule` is sqrt(1 - alpha_bar) by t. t = 0 is x_0."""
    if t == 0:
        return image, 0.0
    level = float(schedule[t])
    return to_uint8(noised_values(image, level, forward_noise(index, image.shape))), level
