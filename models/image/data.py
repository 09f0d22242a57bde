"""MNIST in the official IDX format (optionally gzipped), so the full 60k set works as well as our 10k."""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

import numpy as np

# The committed held-out digits (MNIST t10k; train10k for the Frechet floor), for evaluation, tests and pages.
EVALUATION_MNIST = Path(__file__).resolve().parents[1] / "evaluation_data" / "mnist"


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte payload
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    dims = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find_split(folder: Path, split: str) -> tuple[Path, Path]:
    """(images, labels) of a split such as 'train10k', 'train' or 't10k' in an MNIST folder."""

    def pick(kind: str) -> Path:
        for name in (
            f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz",
            f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte",
        ):
            if (folder / name).exists():
                return folder / name
        raise FileNotFoundError(f"no {split} {kind} in {folder}")

    return pick("images"), pick("labels")


def load_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and int64 labels (N,)."""
    images_path, labels_path = find_split(folder, split)
    images, labels = read_idx(images_path), read_idx(labels_path).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{images_path} and {labels_path} disagree on the number of digits")
    return images, labels


def to_model_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1], with a channel axis: (N, 1, 28, 28)."""
    return (images.astype(np.float32) / 127.5 - 1.0)[:, None]


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float [-1, 1] (N, 1, H, W) or (N, H, W) -> uint8 (N, H, W)."""
    if x.ndim == 4:
        x = x[:, 0]
    return ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8)


# The held-out digits the image lab starts from (MNIST t10k): pages and requests name one by its index.
HELD_OUT_DIGITS = 10_000


@cache
def held_out_split() -> tuple[np.ndarray, np.ndarray]:
    """The committed t10k digits and their labels, read once: uint8 (10000, 28, 28), int64 (10000,)."""
    images, labels = load_split(EVALUATION_MNIST, "t10k")
    if images.shape != (HELD_OUT_DIGITS, 28, 28):
        raise ValueError(f"{EVALUATION_MNIST} holds t10k digits of shape {images.shape}, not {HELD_OUT_DIGITS} 28x28")
    return images, labels


def held_out_digit(index: int) -> tuple[np.ndarray, int]:
    """Test digit no. `index`: uint8 (28, 28) and its label."""
    images, labels = held_out_split()
    return images[index], int(labels[index])
