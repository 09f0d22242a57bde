import gzip

import numpy as np
import pytest

from models.image.data import load_split, read_idx, to_model_range, to_uint8


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def test_idx_round_trip_and_split_lookup(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4], np.uint8)
    write_idx(tmp_path / "mini-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "mini-labels-idx1-ubyte.gz", labels)
    assert np.array_equal(read_idx(tmp_path / "mini-images-idx3-ubyte.gz"), images)
    got_images, got_labels = load_split(tmp_path, "mini")
    assert np.array_equal(got_images, images) and got_labels.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(FileNotFoundError):
        load_split(tmp_path, "t10k")


def test_range_conversion_round_trips():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert np.array_equal(to_uint8(to_model_range(images)), images)
