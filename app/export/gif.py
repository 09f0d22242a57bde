"""A finished run as an animated GIF (Pillow): the text chip row, the digit pair, or the race's two lanes.

Drawn from the JSON variant of the frames (`tokens`, `xt_png` / `x0_png`, `lanes`), never from their HTML, with
the theme's colours (static/theater.css) and Pillow's bundled font (nothing is downloaded). One GIF frame per
player frame, each shown as long as the player shows it at the chosen speed (`static/player.js`: 8 frames a
second at 1x); the last one is held 2 s. Runs longer than `MAX_GIF_FRAMES` are sampled: evenly spaced frames,
the first and the last included. Every frame of one GIF has the same size (the tallest layout of the run).
"""

from __future__ import annotations

import base64
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import GifImagePlugin, Image, ImageDraw, ImageFont

from app.web.playback import BASE_FPS
from app.web.static_files import STATIC_ROOT

MAX_GIF_FRAMES = 200
HOLD_LAST_MS = 2000

THEME_NAMES = ("bg", "panel", "fg", "muted", "line", "accent", "bad", "good", "blank-line", "blank-fg", "new-bg")
CONFIDENCE_NAMES = ("c0", "c1", "c2", "c3", "c4")


def default_palette(css_path: Path = STATIC_ROOT / "theater.css") -> dict[str, str]:
    """The colours of the page's default (dark) theme, read from its stylesheet's first `:root` block, so a GIF
    looks like the page and the two never drift apart."""
    css = css_path.read_text()
    start = css.index(":root {")
    return dict(re.findall(r"--([a-z0-9-]+): (#[0-9a-f]{6})\b", css[start : css.index("}", start)]))


_PALETTE = default_palette()
THEME = {name: _PALETTE[name] for name in THEME_NAMES}
CONFIDENCE = {name: _PALETTE[name] for name in CONFIDENCE_NAMES}
BG, PANEL, FG, MUTED, LINE = THEME["bg"], THEME["panel"], THEME["fg"], THEME["muted"], THEME["line"]
ACCENT, BAD, GOOD = THEME["accent"], THEME["bad"], THEME["good"]
BLANK_BORDER, BLANK_TEXT, NEW_BG = THEME["blank-line"], THEME["blank-fg"], THEME["new-bg"]

WIDTH = 960  # text and race GIFs
PAD = 24
HEADER_SIZE, CHIP_SIZE, MASK_SIZE, LANE_TITLE_SIZE = 24, 20, 13, 20
HEADER_H = 34
CHIP_PAD_X, CHIP_PAD_Y = 7, 5
CHIP_H = CHIP_SIZE + 5 + 2 * CHIP_PAD_Y  # ascent + descent of the bundled font at 20 px, plus padding
ROW_H = CHIP_H + 8
GAP_SPACE, GAP_TIGHT = 8, 2  # before a token that starts with a space (or a blank), before one that does not
LANE_PAD = 12
LANE_TITLE_H = 30
LANE_GAP = 14
SCALE = 8  # the digits: 28 px -> 224 px, nearest neighbour
DIGIT = 28 * SCALE
DIGIT_GAP = 32
CAPTION_H = 30
IMAGE_WIDTH = 2 * PAD + 2 * DIGIT + DIGIT_GAP


def frame_ms(speed: float) -> int:
    """How long the player shows a frame at `speed`, rounded to the GIF's 10 ms steps (half up): 1x -> 130."""
    return max(20, int(1000 / (BASE_FPS * speed) / 10 + 0.5) * 10)


def sample_indices(count: int, limit: int = MAX_GIF_FRAMES) -> list[int]:
    """All of 0..count-1, or `limit` evenly spaced ones, the first and the last included."""
    if count <= limit:
        return list(range(count))
    return [round(i * (count - 1) / (limit - 1)) for i in range(limit)]


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (Aileron)


@lru_cache(maxsize=1)
def _notdef() -> bytes:
    return bytes(font(CHIP_SIZE).getmask("\uffff"))


@lru_cache(maxsize=4096)
def _has_glyph(char: str) -> bool:
    return char.isascii() or bytes(font(CHIP_SIZE).getmask(char)) != _notdef()


FALLBACKS = {
    "\u23ce": "\\n",
    "\u2423": "_",
    "\u2014": "-",
    "\u2013": "-",
    "\u2019": "'",
    "\u2018": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",
}


def drawable(text: str) -> str:
    """`text` in characters the bundled font has: a few look-alikes, accents dropped, else '?'."""
    if text.isascii():
        return text
    out = []
    for char in text:
        if _has_glyph(char):
            out.append(char)
        elif char in FALLBACKS:
            out.append(FALLBACKS[char])
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            out.append(base if base and all(_has_glyph(c) for c in base) else "?")
    return "".join(out)


@lru_cache(maxsize=8192)
def text_width(text: str, size: int) -> int:
    return round(font(size).getlength(text))


def header(draw: ImageDraw.ImageDraw, x: int, y: int, main: str, extra: str = "") -> None:
    draw.text((x, y), main, fill=FG, font=font(HEADER_SIZE))
    if extra:
        draw.text((x + text_width(main, HEADER_SIZE), y + 3), drawable(extra), fill=MUTED, font=font(CHIP_SIZE))


# ---------------------------------------------------------------------------------------------------------
# One renderer per kind: the parsed JSON frames to draw (already sampled) -> one RGB image each, lazily


def _digit(png: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(png))).convert("L")
    return image.resize((image.width * SCALE, image.height * SCALE), Image.Resampling.NEAREST).convert("RGB")


def image_height(with_classifier: bool) -> int:
    return PAD + HEADER_H + 10 + DIGIT + CAPTION_H + (CAPTION_H if with_classifier else 0) + PAD


def image_images(frames: Sequence[dict[str, Any]]) -> Iterator[Image.Image]:
    with_classifier = any(f.get("digit_probabilities") for f in frames)
    height = image_height(with_classifier)
    top = PAD + HEADER_H + 10
    for frame in frames:
        image = Image.new("RGB", (IMAGE_WIDTH, height), BG)
        draw = ImageDraw.Draw(image)
        header(
            draw,
            PAD,
            PAD,
            f"step {frame['step']} of {frame['total']}",
            f"  \u00b7  t = {frame['timestep']}, noise {float(frame['noise_level']):.2f}",
        )
        for i, (key, caption) in enumerate((("xt_png", "x_t: the noisy state"), ("x0_png", "predicted x_0"))):
            x = PAD + i * (DIGIT + DIGIT_GAP)
            image.paste(_digit(frame[key]), (x, top))
            draw.text((x, top + DIGIT + 6), caption, fill=MUTED, font=font(CHIP_SIZE))
        probabilities = frame.get("digit_probabilities")
        if probabilities:
            best = max(range(len(probabilities)), key=lambda d: probabilities[d])
            draw.text(
                (PAD, top + DIGIT + CAPTION_H + 6),
                f"classifier on x_0: {best} at {probabilities[best]:.0%}",
                fill=FG,
                font=font(CHIP_SIZE),
            )
        yield image


# ---------------------------------------------------------------------------------------------------------
# The GIF: one fixed palette, each frame stored as the rectangle that changed, written as it is drawn


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


KEEP = 255  # the palette index of "unchanged": transparent in every frame after the first
KEEP_COLOR = (255, 0, 254)  # a colour no frame draws, so quantizing never picks it


@lru_cache(maxsize=1)
def palette() -> Image.Image:
    """The theme's colours, each ink blended into each background (anti-aliased text), and a grey ramp (the
    digits): one palette for every frame, so an unchanged pixel keeps its index from frame to frame."""
    inks = [FG, MUTED, LINE, ACCENT, BAD, GOOD, *CONFIDENCE.values(), BLANK_BORDER, BLANK_TEXT]
    backgrounds = [BG, PANEL, NEW_BG]
    colors: list[tuple[int, ...]] = [_hex(color) for color in [*backgrounds, *inks]]
    for back in backgrounds:
        for ink in inks:
            a, b = _hex(back), _hex(ink)
            colors += [tuple(round(x + (y - x) * t) for x, y in zip(a, b)) for t in (0.2, 0.4, 0.6, 0.8)]
    colors += [(v, v, v) for v in [*range(0, 256, 4), 255]]
    unique = list(dict.fromkeys(colors))
    assert len(unique) < KEEP
    unique += [unique[0]] * (KEEP - len(unique)) + [KEEP_COLOR]
    image = Image.new("P", (1, 1))
    image.putpalette([channel for color in unique for channel in color])
    return image


def encode_gif(images: Iterator[Image.Image], durations: Sequence[int]) -> bytes:
    """RGB frames -> GIF bytes, holding two frames at a time (Pillow's `save_all` keeps every frame until the
    end). A frame after the first stores only the rectangle that changed, its unchanged pixels transparent
    (disposal 1 keeps what is under them): long runs of one index, which LZW packs to almost nothing."""
    out: list[bytes] = []
    previous: np.ndarray | None = None
    for image, duration in zip(images, durations):
        frame = image.quantize(palette=palette(), dither=Image.Dither.NONE)
        pixels = np.asarray(frame)
        if previous is None:
            header, _ = GifImagePlugin.getheader(frame, info={"loop": 0})
            out += header
            out += GifImagePlugin.getdata(frame, duration=duration, disposal=1)
        else:
            changed = pixels != previous
            rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
            if rows.size:
                top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            else:  # an unchanged frame still takes its time: one transparent pixel
                top, bottom, left, right = 0, 1, 0, 1
            delta = np.where(changed, pixels, KEEP)[top:bottom, left:right].astype(np.uint8)
            part = Image.fromarray(delta, "P")
            frame_palette = frame.getpalette()
            assert frame_palette is not None  # quantize() always gives a "P" image with a palette
            part.putpalette(frame_palette)
            out += GifImagePlugin.getdata(part, offset=(int(left), int(top)), duration=duration, disposal=1, transparency=KEEP)
        previous = pixels
    out.append(b";")
    return b"".join(out)


def render_gif(
    draw: Callable[[Sequence[dict[str, Any]]], Iterator[Image.Image]],
    frames_json: Sequence[str],
    speed: float = 1.0,
    limit: int = MAX_GIF_FRAMES,
) -> bytes:
    """The run's frames (their JSON texts, in order) -> GIF bytes, each frame drawn by `draw` (the demo's renderer
    in the registry). Blocking and CPU-bound: call it off the loop."""
    if not frames_json:
        raise ValueError("a run without frames has no GIF")
    frames = [json.loads(frames_json[i]) for i in sample_indices(len(frames_json), limit)]
    durations = [frame_ms(speed)] * (len(frames) - 1) + [HOLD_LAST_MS]
    return encode_gif(draw(frames), durations)
