"""The grid: 16 samples of one request at once, one batched forward pass a step (`sample_image` with `batch`), laid
out as 4x4 tiles. Torch-free: the web layer builds the batched request and tiles the frames' arrays with it."""

from __future__ import annotations

import numpy as np

from models.image.request import ImageRequest

TILES = 16
COLUMNS = 4


def grid_request(request: ImageRequest) -> ImageRequest:
    """The same request for `TILES` images: the batch draws one noise tensor of that many images from the seed, so
    each tile starts from its own noise and the grid is reproducible from the seed."""
    return request.model_copy(update={"batch": TILES})


def tile(images: np.ndarray, columns: int = COLUMNS) -> np.ndarray:
    """uint8 (N, H, W) -> uint8 (rows * H, columns * W), row by row from the top left, no gaps (the page draws the
    gaps and labels over it); a short last row is left black."""
    count, height, width = images.shape
    rows = -(-count // columns)
    sheet = np.zeros((rows * height, columns * width), dtype=np.uint8)
    for index in range(count):
        row, column = divmod(index, columns)
        sheet[row * height : (row + 1) * height, column * width : (column + 1) * width] = images[index]
    return sheet
