"""Inpainting masks: which pixels of a 28x28 digit to fill, in a compact text form that fits a URL.

Wire form: the 784 pixels row by row, one bit each (1 = fill, 0 = keep), packed most significant bit first into 98
bytes, written as unpadded base64url: exactly 131 characters of A-Z a-z 0-9 - _. Torch-free: the request type, the
pages and the samplers all read it.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

import numpy as np

SIDE = 28
PIXELS = SIDE * SIDE
MASK_CHARS = math.ceil(PIXELS / 8 * 4 / 3)  # 98 bytes -> 131 base64 characters without padding
_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
FORMAT = f"{MASK_CHARS} characters of base64url ({PIXELS} bits, one per pixel, row by row, 1 = fill)"


class MaskError(ValueError):
    """A mask that cannot be read; the message says what is wrong and what is expected."""


def encode_mask(fill: np.ndarray) -> str:
    """bool (28, 28), True = fill -> the wire form."""
    if fill.shape != (SIDE, SIDE):
        raise MaskError(f"a mask is {SIDE}x{SIDE} pixels, not {'x'.join(map(str, fill.shape))}")
    return base64.urlsafe_b64encode(np.packbits(fill.astype(bool).ravel()).tobytes()).decode("ascii").rstrip("=")


def decode_mask(text: str) -> np.ndarray:
    """The wire form -> bool (28, 28), True = fill. MaskError if malformed or if it fills nothing."""
    if len(text) != MASK_CHARS:
        raise MaskError(f"mask must be {FORMAT}; got {len(text)} characters")
    if not _ALPHABET.fullmatch(text):
        bad = next(char for char in text if not _ALPHABET.fullmatch(char))
        raise MaskError(f"mask must be {FORMAT}; {bad!r} is not a base64url character")
    try:
        packed = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        raise MaskError(f"mask must be {FORMAT}; it does not decode") from None
    fill = np.unpackbits(np.frombuffer(packed, dtype=np.uint8))[:PIXELS].astype(bool).reshape(SIDE, SIDE)
    if encode_mask(fill) != text:  # the 2 bits past the last pixel must be zero: one picture, one spelling
        raise MaskError(f"mask must be {FORMAT}; its last character has bits set past pixel {PIXELS}")
    if not fill.any():
        raise MaskError("mask fills no pixel: paint at least one pixel to fill")
    return fill


def _blocks(seed: int) -> np.ndarray:
    """Four 7x7 blocks at seeded places (they may overlap): a mask that leaves strokes on every side."""
    rng = np.random.default_rng(seed)
    fill = np.zeros((SIDE, SIDE), dtype=bool)
    for row, col in rng.integers(0, SIDE - 7, size=(4, 2)):
        fill[row : row + 7, col : col + 7] = True
    return fill


def preset_mask(name: str, seed: int = 0) -> np.ndarray:
    """The presets a keyboard user picks instead of painting: top half, left half, centre, random blocks."""
    fill = np.zeros((SIDE, SIDE), dtype=bool)
    half = SIDE // 2
    if name == "top":
        fill[:half] = True
    elif name == "left":
        fill[:, :half] = True
    elif name == "centre":
        fill[7:21, 7:21] = True
    elif name == "blocks":
        fill = _blocks(seed)
    else:
        raise MaskError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return fill


PRESETS = ("top", "left", "centre", "blocks")
