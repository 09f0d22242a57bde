"""GIF frames for the three image demos that had none: the grid (`image/grid`), the samplers side by side
(`image/samplers`) and the image race (`race/image`). Each renderer takes the run's parsed JSON frames (already
sampled) and yields one RGB image a frame, all of one run the same size, like the renderers of `app.export.gif`,
whose theme, fonts and sizes they share. The layouts follow the page's (templates/stream.html): the grid's two
sheets, the samplers' three lanes and the race's two lanes side by side."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw

from app.export.gif import (
    ACCENT,
    BAD,
    BG,
    CAPTION_H,
    CHIP_SIZE,
    DIGIT,
    FG,
    GOOD,
    HEADER_H,
    LANE_GAP,
    LANE_PAD,
    LANE_TITLE_H,
    LANE_TITLE_SIZE,
    LINE,
    MASK_SIZE,
    MUTED,
    PAD,
    PANEL,
    SCALE,
    _digit,
    font,
    header,
    text_width,
)
from app.render.image_race import LANE_TITLES as RACE_TITLES
from app.render.image_race import SIZE
from app.render.samplers import LANE_TITLES as SAMPLER_TITLES
from models.image.race_frames import AUTOREGRESSIVE

TOP = PAD + HEADER_H + 10  # where a frame's content starts, under its header (as in app.export.gif)
SMALL = 4  # the grid's and the samplers' digits: 28 px -> 112 px, so 2 x 4 tiles or 3 lanes of 2 stay under 1000 px
TILE = SIZE * SMALL
TILE_GAP = 4
LABEL_H = 18  # the band under each x0 tile that holds the classifier's label
SHEET_GAP = 24
PICTURE_GAP = 16
STATUS_SIZE = 16
STATUS_H = 22
LANE_HEAD_H = LANE_TITLE_H + 2 * STATUS_H + 8  # the title, the progress line and the finish line (kept empty until then)


@lru_cache(maxsize=16)  # a few frames' worth: what repeats, repeats from one frame to the next
def _picture(png: str, scale: int) -> Image.Image:
    """A base64 PNG scaled by nearest neighbour. `_digit` scales by SCALE; a divisor of it is exact on the way
    down. Cached: a lane that holds its state (or has finished) repeats its PNG from frame to frame."""
    image = _digit(png)
    if scale == SCALE:
        return image
    return image.resize((image.width * scale // SCALE, image.height * scale // SCALE), Image.Resampling.NEAREST)


def _place(image: Image.Image, draw: ImageDraw.ImageDraw, png: str | None, x: int, y: int, scale: int) -> None:
    """A picture, or the page's empty box where there is none yet (x0 before the first step)."""
    if png:
        image.paste(_picture(png, scale), (x, y))
    else:
        side = SIZE * scale
        draw.rectangle((x, y, x + side - 1, y + side - 1), fill=BG, outline=LINE)


def _lane_box(draw: ImageDraw.ImageDraw, x: int, y: int, width: int, height: int, finished: bool) -> None:
    draw.rounded_rectangle((x, y, x + width, y + height), radius=10, fill=PANEL, outline=GOOD if finished else LINE, width=2)


def _lane_head(draw: ImageDraw.ImageDraw, x: int, y: int, title: str, progress: str, finish: str) -> None:
    draw.text((x, y), title, fill=ACCENT, font=font(LANE_TITLE_SIZE))
    draw.text((x, y + LANE_TITLE_H), progress, fill=MUTED, font=font(STATUS_SIZE))
    if finish:
        draw.text((x, y + LANE_TITLE_H + STATUS_H), finish, fill=GOOD, font=font(STATUS_SIZE))


def _caption(draw: ImageDraw.ImageDraw, x: int, y: int, text: str, size: int = STATUS_SIZE) -> None:
    draw.text((x, y + 6), text, fill=MUTED, font=font(size))


# ---------------------------------------------------------------------------------------------------------
# The grid: x_t and x0 as two sheets of 4x4 tiles, the classifier's label under each x0 tile


def grid_images(
    frames: Sequence[dict[str, Any]], *, sampler: str | None = None, digit: int | None = None
) -> Iterator[Image.Image]:
    """`sampler` and `digit` come from the run's request (the frames carry neither): the header names the sampler,
    and a label that is not the digit asked for is drawn red, as on the page. Both optional."""
    columns, tiles = int(frames[0]["columns"]), int(frames[0]["tiles"])  # fixed for a run
    rows = -(-tiles // columns)
    sheet_w = columns * TILE + (columns - 1) * TILE_GAP
    sheet_h = rows * (TILE + LABEL_H) + (rows - 1) * TILE_GAP  # the taller sheet, x0's, sets the height
    width, height = 2 * PAD + 2 * sheet_w + SHEET_GAP, TOP + sheet_h + CAPTION_H + PAD
    sheets = (("xt_png", 0, "x_t: 16 noisy states"), ("x0_png", LABEL_H, "predicted x_0, and what the classifier reads"))
    for frame in frames:
        image = Image.new("RGB", (width, height), BG)
        draw = ImageDraw.Draw(image)
        # As on the page: no labels at step 0, where nothing has been predicted yet.
        labels = list(zip(frame.get("classes") or [], frame.get("confidences") or [])) if frame["step"] else []
        extra = f"  \u00b7  {SAMPLER_TITLES.get(sampler, sampler)}" if sampler else ""
        extra += f"  \u00b7  t = {frame['timestep']}"
        if digit is not None and labels:
            extra += f"  \u00b7  {sum(read == digit for read, _ in labels)}/{len(labels)} read as {digit}"
        header(draw, PAD, PAD, f"step {frame['step']}/{frame['total']}", extra)
        for index, (key, band, caption) in enumerate(sheets):
            left = PAD + index * (sheet_w + SHEET_GAP)
            sheet = _picture(frame[key], SMALL)
            for k in range(tiles):
                row, column = divmod(k, columns)
                x, y = left + column * (TILE + TILE_GAP), TOP + row * (TILE + TILE_GAP + band)
                image.paste(sheet.crop((column * TILE, row * TILE, (column + 1) * TILE, (row + 1) * TILE)), (x, y))
                if band and k < len(labels):
                    read, probability = labels[k]
                    color = BAD if digit is not None and read != digit else FG
                    text = f"{read} {float(probability):.0%}"
                    draw.text((x + TILE // 2, y + TILE + 2), text, fill=color, font=font(MASK_SIZE), anchor="mt")
            _caption(draw, left, TOP + sheet_h, caption, CHIP_SIZE)
        yield image


# ---------------------------------------------------------------------------------------------------------
# The samplers: one lane each (DDPM, DDIM, DPM-Solver++), its x_t and x0 at its own step


def samplers_images(frames: Sequence[dict[str, Any]]) -> Iterator[Image.Image]:
    lanes = len(frames[0]["lanes"])
    lane_w = 2 * TILE + PICTURE_GAP + 2 * LANE_PAD
    lane_h = LANE_PAD + LANE_HEAD_H + TILE + CAPTION_H + LANE_PAD
    width, height = 2 * PAD + lanes * lane_w + (lanes - 1) * LANE_GAP, TOP + lane_h + PAD
    last: dict[tuple[str, str], str] = {}  # a lane keeps its last picture (a finished lane's stays on screen)
    for frame in frames:
        image = Image.new("RGB", (width, height), BG)
        draw = ImageDraw.Draw(image)
        header(
            draw,
            PAD,
            PAD,
            f"frame {frame['step']} of {frame['total']}",
            "  \u00b7  one clock: each sampler at the same share of its run",
        )
        for index, lane in enumerate(frame["lanes"]):
            name, finished = str(lane["lane"]), bool(lane.get("finished"))
            x = PAD + index * (lane_w + LANE_GAP)
            _lane_box(draw, x, TOP, lane_w, lane_h, finished)
            progress = f"step {lane['step']} of {lane['total']}  \u00b7  {lane['forward_passes']} passes"
            finish = f"finished in {float(lane['wall_ms']) / 1000:.2f} s" if finished else ""
            _lane_head(draw, x + LANE_PAD, TOP + LANE_PAD, SAMPLER_TITLES.get(name, name), progress, finish)
            y = TOP + LANE_PAD + LANE_HEAD_H
            for k, (key, caption) in enumerate((("xt_png", "x_t"), ("x0_png", "predicted x_0"))):
                if lane.get(key):
                    last[name, key] = lane[key]
                left = x + LANE_PAD + k * (TILE + PICTURE_GAP)
                _place(image, draw, last.get((name, key)), left, y, SMALL)
                _caption(draw, left, y + TILE, caption)
        yield image


# ---------------------------------------------------------------------------------------------------------
# The image race: the PixelCNN's canvas (its cursor on the next pixel) and the DDPM's x_t and predicted x0


def _race_pictures(name: str) -> tuple[tuple[str, str], ...]:
    if name == AUTOREGRESSIVE:
        return (("image_png", "canvas"),)
    return (("image_png", "x_t: the noisy state"), ("x0_png", "predicted x_0"))


def _race_lane_width(name: str) -> int:
    count = len(_race_pictures(name))
    pictures = count * DIGIT + (count - 1) * PICTURE_GAP
    return max(pictures, text_width(RACE_TITLES.get(name, name), LANE_TITLE_SIZE)) + 2 * LANE_PAD


def _stroke(draw: ImageDraw.ImageDraw, pixels: Sequence[int], x: int, y: int) -> None:
    """The forced stroke's outline: each pixel edge that does not touch another pixel of it (the page's path)."""
    cells = {divmod(int(p), SIZE) for p in pixels}
    for row, column in cells:
        left, top = x + column * SCALE, y + row * SCALE
        right, bottom = left + SCALE, top + SCALE
        for neighbour, edge in (
            ((row - 1, column), (left, top, right, top)),
            ((row + 1, column), (left, bottom, right, bottom)),
            ((row, column - 1), (left, top, left, bottom)),
            ((row, column + 1), (right, top, right, bottom)),
        ):
            if neighbour not in cells:
                draw.line(edge, fill=BAD, width=3)


def image_race_images(frames: Sequence[dict[str, Any]]) -> Iterator[Image.Image]:
    names = [str(lane["lane"]) for lane in frames[0]["lanes"]]
    widths = [_race_lane_width(name) for name in names]
    lane_h = LANE_PAD + LANE_HEAD_H + DIGIT + CAPTION_H + LANE_PAD
    width = 2 * PAD + sum(widths) + (len(names) - 1) * LANE_GAP
    height = TOP + lane_h + PAD
    passes = max(int(lane["total_passes"]) for lane in frames[0]["lanes"])
    for frame in frames:
        image = Image.new("RGB", (width, height), BG)
        draw = ImageDraw.Draw(image)
        header(draw, PAD, PAD, f"pass {frame['clock']} of {passes}", "  \u00b7  forward passes, one clock")
        x = PAD
        for lane, lane_w in zip(frame["lanes"], widths):
            name, finished = str(lane["lane"]), bool(lane.get("finished"))
            done, total = lane["forward_passes"], lane["total_passes"]
            _lane_box(draw, x, TOP, lane_w, lane_h, finished)
            # An AR pass paints one pixel; a DDPM pass is one denoising step.
            progress = f"{done} of {total} pixels painted" if name == AUTOREGRESSIVE else f"step {done} of {total}"
            finish = f"finished: {done} passes, {float(lane['wall_ms']) / 1000:.2f} s" if finished else ""
            _lane_head(draw, x + LANE_PAD, TOP + LANE_PAD, RACE_TITLES.get(name, name), progress, finish)
            y = TOP + LANE_PAD + LANE_HEAD_H
            for k, (key, caption) in enumerate(_race_pictures(name)):
                left = x + LANE_PAD + k * (DIGIT + PICTURE_GAP)
                _place(image, draw, lane.get(key), left, y, SCALE)
                if lane.get("forced"):
                    _stroke(draw, lane["forced"], left, y)
                if key == "image_png" and lane.get("cursor") is not None:
                    row, column = divmod(int(lane["cursor"]), SIZE)
                    cx, cy = left + column * SCALE, y + row * SCALE
                    draw.rectangle((cx, cy, cx + SCALE - 1, cy + SCALE - 1), fill=ACCENT, outline=FG)
                _caption(draw, left, y + DIGIT, caption)
            x += lane_w + LANE_GAP
        yield image
