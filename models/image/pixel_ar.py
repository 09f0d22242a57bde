"""The image race's autoregressive side: a class-conditional Gated PixelCNN (van den Oord et al. 2016) that
paints a digit pixel by pixel in raster order (left to right, top to bottom), over a few intensity levels.

Two stacks remove the plain PixelCNN's blind spot: the vertical stack sees every row above the pixel, the
horizontal stack the pixels to its left in its own row. The first layer is masked so a pixel never sees itself
(mask "A"); later layers may see their own position, which by then only carries what was to its left and
above (mask "B"). `tests/models/test_pixel_ar.py` checks that changing pixel k never changes the prediction
for any pixel up to k.

Intensities are quantised to `levels` evenly spaced values (4: black, two greys, white): a softmax over 4
values learns on this CPU in minutes where one over 256 would need hours, and MNIST digits are nearly binary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.checkpoints import load_weights, read_json, verify_manifest

IMAGE_SIZE = 28
CLASSES = 10


@dataclass(frozen=True)
class PixelARConfig:
    levels: int = 4  # intensity levels
    channels: int = 32
    layers: int = 6
    kernel: int = 5  # odd: the vertical stack reads (kernel // 2) rows above, the horizontal as many pixels left

    def to_dict(self) -> dict:
        return asdict(self)


def quantise(images: torch.Tensor, levels: int) -> torch.Tensor:
    """uint8-range images (any shape, 0..255) -> level indices 0..levels-1 (nearest level)."""
    return (images.float() / 255 * (levels - 1)).round().long().clamp(0, levels - 1)


def levels_to_model_range(indices: torch.Tensor, levels: int) -> torch.Tensor:
    """Level indices -> floats in [-1, 1], the range the DDPM and the classifier read."""
    return indices.float() / (levels - 1) * 2 - 1


class GatedLayer(nn.Module):
    vertical_mask: torch.Tensor  # buffers, registered in __init__
    horizontal_mask: torch.Tensor

    def __init__(self, channels: int, kernel: int, first: bool) -> None:
        super().__init__()
        half = kernel // 2
        self.first = first
        # vertical: rows i-half..i of a (half+1, kernel) window; the first layer drops row i itself
        self.vertical = nn.Conv2d(channels, 2 * channels, (half + 1, kernel), padding=(half, half))
        # horizontal: columns j-half..j of row i; the first layer drops column j itself
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, half + 1), padding=(0, half))
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.residual = nn.Conv2d(channels, channels, 1)
        self.label = nn.Embedding(CLASSES, 2 * channels)
        vertical_mask = torch.ones_like(self.vertical.weight)
        horizontal_mask = torch.ones_like(self.horizontal.weight)
        if first:
            vertical_mask[:, :, -1] = 0  # row i
            horizontal_mask[:, :, :, -1] = 0  # column j
        self.register_buffer("vertical_mask", vertical_mask, persistent=False)
        self.register_buffer("horizontal_mask", horizontal_mask, persistent=False)

    @staticmethod
    def gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, v: torch.Tensor, h: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = v.shape[-2:]
        bias = self.label(label)[:, :, None, None]
        v_pre = F.conv2d(v, self.vertical.weight * self.vertical_mask, self.vertical.bias, padding=self.vertical.padding)
        v_pre = v_pre[:, :, :height, :]  # output row i: input rows i-half..i (the padding added rows below)
        h_pre = F.conv2d(h, self.horizontal.weight * self.horizontal_mask, self.horizontal.bias, padding=self.horizontal.padding)
        h_pre = h_pre[:, :, :, :width]
        v_out = self.gate(v_pre + bias)
        mixed = self.gate(h_pre + self.vertical_to_horizontal(v_pre) + bias)
        h_out = self.residual(mixed) + (0 if self.first else h)
        return v_out, h_out


class PixelCNN(nn.Module):
    def __init__(self, config: PixelARConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.levels, config.channels)
        self.layers = nn.ModuleList(GatedLayer(config.channels, config.kernel, first=i == 0) for i in range(config.layers))
        self.out = nn.Sequential(
            nn.Conv2d(config.channels, 4 * config.channels, 1), nn.ReLU(), nn.Conv2d(4 * config.channels, config.levels, 1)
        )

    def forward(self, pixels: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """pixels (B, H, W) level indices, label (B,) digits -> logits (B, levels, H, W): for each pixel, the
        distribution of its level given the pixels before it in raster order (and the label)."""
        x = self.embed(pixels).permute(0, 3, 1, 2)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h, label)
        return self.out(h)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def nll_bits_per_pixel(network: PixelCNN, pixels: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of the quantised images, in bits per pixel."""
    logits = network(pixels, labels)
    return float(F.cross_entropy(logits, pixels) / math.log(2))


# ---- a model ready to sample


@dataclass
class PixelARModel:
    network: PixelCNN
    name: str
    trained: bool
    card: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.network.eval()

    @property
    def levels(self) -> int:
        return self.network.config.levels


def load_pixel_ar(folder: Path) -> PixelARModel:
    verify_manifest(folder)
    network = PixelCNN(PixelARConfig(**read_json(folder / "config.json")))
    load_weights(network, folder / "model.safetensors")
    summary = folder / "training_summary.json"
    return PixelARModel(network, folder.name, trained=True, card=read_json(summary) if summary.exists() else {})


def untrained_pixel_ar(config: PixelARConfig | None = None, seed: int = 0) -> PixelARModel:
    torch.manual_seed(seed)
    return PixelARModel(PixelCNN(config or PixelARConfig()), "image-pixel-ar", trained=False)


@dataclass(frozen=True)
class PixelFrame:
    """The canvas after `passes` pixels were painted (one forward pass each), in raster order."""

    pixels: np.ndarray = field(repr=False)  # uint8 (H, W) grey values; unpainted pixels 0
    painted: int  # pixels decided so far (the cursor is at pixel `painted`)
    passes: int
    forced: tuple[int, ...] = ()  # pixels set from outside (a forced mistake), never sampled


def rows_needed(config: PixelARConfig) -> int:
    """How many rows above a pixel its prediction can read: each layer's vertical stack reaches kernel // 2 rows
    further up. A pass over a crop that starts this many rows above is exact and costs less than the image."""
    return config.layers * (config.kernel // 2)


@torch.inference_mode()
def pixel_logits(network: PixelCNN, pixels: torch.Tensor, label: torch.Tensor, row: int, column: int) -> torch.Tensor:
    """Logits (levels,) for pixel (row, column) from one pass over the rows it can read (see `rows_needed`)."""
    top = max(0, row - rows_needed(network.config))
    return network(pixels[:, top : row + 1], label)[0, :, row - top, column]


def sample_pixels(
    model: PixelARModel,
    digit: int,
    seed: int,
    should_stop: Callable[[], bool] | None = None,
    forced: dict[int, int] | None = None,
    every: int = 1,
) -> Iterator[PixelFrame]:
    """Paint a digit pixel by pixel (one forward pass per pixel), yielding the canvas every `every` pixels and
    at the end. `forced`: {pixel index: level} painted as given instead of sampled (a forced early decision);
    the model reads them like its own. A pixel once painted never changes."""
    generator = torch.Generator().manual_seed(seed)
    levels = model.levels
    canvas = torch.zeros((1, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.long)
    label = torch.tensor([digit])
    forced = forced or {}
    passes = 0
    grey = np.round(np.arange(levels) / (levels - 1) * 255).astype(np.uint8)
    yield PixelFrame(grey[canvas[0].numpy()], 0, 0, ())
    for index in range(IMAGE_SIZE * IMAGE_SIZE):
        if should_stop and should_stop():
            return
        row, column = divmod(index, IMAGE_SIZE)
        if index in forced:
            canvas[0, row, column] = forced[index]
        else:
            probs = torch.softmax(pixel_logits(model.network, canvas, label, row, column).double(), dim=-1)
            canvas[0, row, column] = int(torch.multinomial(probs, 1, generator=generator))
            passes += 1
        if (index + 1) % every == 0 or index == IMAGE_SIZE * IMAGE_SIZE - 1:
            done = tuple(sorted(p for p in forced if p <= index))
            yield PixelFrame(grey[canvas[0].numpy()], index + 1, passes, done)


@torch.inference_mode()
def sample_batch(
    network: PixelCNN, labels: torch.Tensor, generator: torch.Generator, forced: dict[int, int] | None = None
) -> torch.Tensor:
    """Many digits at once (evaluation): labels (B,) -> level indices (B, H, W), one batched pass per pixel."""
    canvas = torch.zeros((len(labels), IMAGE_SIZE, IMAGE_SIZE), dtype=torch.long)
    forced = forced or {}
    reach = rows_needed(network.config)
    for index in range(IMAGE_SIZE * IMAGE_SIZE):
        row, column = divmod(index, IMAGE_SIZE)
        if index in forced:
            canvas[:, row, column] = forced[index]
            continue
        top = max(0, row - reach)
        logits = network(canvas[:, top : row + 1], labels)[:, :, row - top, column]
        canvas[:, row, column] = torch.multinomial(torch.softmax(logits.double(), dim=-1), 1, generator=generator)[:, 0]
    return canvas
