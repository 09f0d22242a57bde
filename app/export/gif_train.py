"""`/export/train.gif`: the live twins' curves growing, one GIF frame per point (Pillow, the page's colours).

Drawn from the frames' JSON: each frame carries its own point, so frame k draws the points of frames 0..k it was
given (a run past `MAX_GIF_FRAMES` points is sampled evenly, and its curves are drawn through the sampled points).
The axes are the whole run's from the first frame on, so the curves grow into a fixed picture: epochs on a log axis,
loss in nats per byte on a linear one; held-out loss thick, training loss thin; the twin blue, diffusion orange; the
held-out loss of the bytes' frequencies alone dotted across.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from PIL import Image, ImageDraw

from app.export.gif import BG, CHIP_SIZE, CONFIDENCE, FG, LINE, MUTED, PAD, WIDTH, drawable, font, header, text_width

HEIGHT = 540
PLOT_LEFT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM = PAD + 60, 80, WIDTH - PAD, HEIGHT - 150
SMALL = 16
COLOURS = {"ar": CONFIDENCE["c4"], "diffusion": CONFIDENCE["c1"]}
NAMES = {"ar": "twin", "diffusion": "diffusion (NELBO)"}
SAMPLE_CHARS = 90


def _ranges(points: Sequence[dict[str, Any]]) -> tuple[float, float, float, float]:
    plotted = [p for p in points if p["epochs"] > 0] or list(points)  # the untrained point has no place on a log axis
    epochs = [p["epochs"] for p in plotted if p["epochs"] > 0] or [1.0]
    losses = [p[k] for p in plotted for k in ("ar_train", "ar_held_out", "diffusion_train", "diffusion_held_out")]
    x_lo, x_hi = min(epochs), max(epochs)
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo / 2, x_hi * 2
    return math.log10(x_lo), math.log10(x_hi), math.floor(min(losses) * 2) / 2, math.ceil(max(losses) * 2) / 2


def _axes(draw: ImageDraw.ImageDraw, y_lo: float, y_hi: float, x_lo: float, x_hi: float) -> None:
    draw.rectangle((PLOT_LEFT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM), outline=LINE)
    value = y_lo
    while value <= y_hi + 1e-9:
        y = PLOT_BOTTOM - (value - y_lo) / (y_hi - y_lo) * (PLOT_BOTTOM - PLOT_TOP)
        draw.line((PLOT_LEFT, y, PLOT_RIGHT, y), fill=LINE)
        label = f"{value:g}"
        draw.text((PLOT_LEFT - 8 - text_width(label, SMALL), y - 9), label, fill=MUTED, font=font(SMALL))
        value += 0.5 if y_hi - y_lo <= 4 else 1.0
    for exponent in range(math.floor(x_lo), math.ceil(x_hi) + 1):
        for mantissa in (1, 2, 5):
            tick = math.log10(mantissa) + exponent
            if x_lo - 1e-9 <= tick <= x_hi + 1e-9:
                x = PLOT_LEFT + (tick - x_lo) / (x_hi - x_lo) * (PLOT_RIGHT - PLOT_LEFT)
                draw.line((x, PLOT_BOTTOM, x, PLOT_BOTTOM + 6), fill=MUTED)
                label = f"{mantissa * 10.0**exponent:g}"
                draw.text((x - text_width(label, SMALL) / 2, PLOT_BOTTOM + 8), label, fill=MUTED, font=font(SMALL))
    draw.text((PLOT_LEFT, PLOT_BOTTOM + 30), "epochs (log scale); loss in nats per byte", fill=MUTED, font=font(SMALL))


def train_images(frames: Sequence[dict[str, Any]]) -> Iterator[Image.Image]:
    x_lo, x_hi, y_lo, y_hi = _ranges(frames)

    def xy(epochs: float, loss: float) -> tuple[float, float]:
        x = PLOT_LEFT + (math.log10(epochs) - x_lo) / (x_hi - x_lo) * (PLOT_RIGHT - PLOT_LEFT)
        y = PLOT_BOTTOM - (loss - y_lo) / (y_hi - y_lo) * (PLOT_BOTTOM - PLOT_TOP)
        return x, y

    samples: dict[str, str] = {}
    for index, frame in enumerate(frames):
        image = Image.new("RGB", (WIDTH, HEIGHT), BG)
        draw = ImageDraw.Draw(image)
        header(
            draw,
            PAD,
            PAD,
            f"epoch {frame['epochs']:.1f}",
            f"  \u00b7  step {frame['train_step']:,}  \u00b7  {frame['seconds']:.0f} s",
        )
        _axes(draw, y_lo, y_hi, x_lo, x_hi)
        floor = frame.get("byte_frequency_loss")
        if floor is not None and y_lo <= floor <= y_hi:
            _, y = xy(1.0 if x_lo <= 0 <= x_hi else 10**x_lo, floor)
            for dash in range(PLOT_LEFT, PLOT_RIGHT, 12):
                draw.line((dash, y, dash + 4, y), fill=MUTED, width=2)
        shown = [p for p in frames[: index + 1] if p["epochs"] > 0]
        for name, colour in COLOURS.items():
            for kind, width in (("train", 1), ("held_out", 4)):
                line = [xy(p["epochs"], p[f"{name}_{kind}"]) for p in shown]
                if len(line) > 1:
                    draw.line(line, fill=colour, width=width, joint="curve")
                elif line:
                    x, y = line[0]
                    draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        legend_x = PLOT_RIGHT
        for name in ("diffusion", "ar"):
            words = f"{NAMES[name]} {frame[f'{name}_held_out']:.3f}"
            legend_x -= text_width(words, SMALL) + 24
            draw.rectangle((legend_x - 14, PLOT_TOP - 24, legend_x - 4, PLOT_TOP - 14), fill=COLOURS[name])
            draw.text((legend_x, PLOT_TOP - 28), words, fill=FG, font=font(SMALL))
        if frame.get("samples"):
            samples = frame["samples"]
        y = HEIGHT - 90
        for name in ("ar", "diffusion"):
            text = drawable(samples.get(name, "").replace("\n", " "))[:SAMPLE_CHARS]
            draw.text((PAD, y), f"{NAMES[name]}: ", fill=COLOURS[name], font=font(CHIP_SIZE))
            draw.text((PAD + text_width(f"{NAMES[name]}: ", CHIP_SIZE), y), text, fill=FG, font=font(CHIP_SIZE))
            y += 30
        yield image
