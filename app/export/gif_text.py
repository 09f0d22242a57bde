"""GIF frames of the text demos: the text run's chip row and the race's two lanes, drawn as the page draws them
(the same word joins, line breaks and end-of-story marks as `app.render.text`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from app.export.gif import (
    ACCENT,
    BAD,
    BG,
    BLANK_BORDER,
    BLANK_TEXT,
    CHIP_H,
    CHIP_PAD_X,
    CHIP_PAD_Y,
    CHIP_SIZE,
    CONFIDENCE,
    FG,
    GAP_SPACE,
    GAP_TIGHT,
    GOOD,
    HEADER_H,
    LANE_GAP,
    LANE_PAD,
    LANE_TITLE_H,
    LANE_TITLE_SIZE,
    LINE,
    MASK_SIZE,
    MUTED,
    NEW_BG,
    PAD,
    PANEL,
    ROW_H,
    WIDTH,
    drawable,
    font,
    header,
    text_width,
)
from app.render.race import LANE_TITLES
from app.render.text import confidence_class, is_line_break, shown_text, visible, word_joins

# ---------------------------------------------------------------------------------------------------------
# The chip row (text frames and race lanes)


@dataclass(frozen=True, slots=True)
class Chip:
    kind: str  # fixed | blank | remasked | committed | new | unseen
    text: str  # as drawn
    color: str
    gap: int  # space before it on a row
    width: int
    joined: tuple[bool, bool] = (False, False)  # continues the word before it / is continued by the next piece
    breaks: bool = False  # a line break or the end of a story: the next chip starts a new row


def _token_chip(index: int, token: dict[str, Any], joined: tuple[bool, bool]) -> Chip:
    state, raw = token["state"], token["text"]
    spaced = index == 0 or raw[:1].isspace()
    breaks = state not in ("blank", "remasked") and is_line_break(raw)
    if state == "fixed":
        shown = drawable(shown_text(raw))
        gap = text_width(" ", CHIP_SIZE) if spaced else 0
        return Chip("fixed", shown, FG, gap, text_width(shown, CHIP_SIZE), joined, breaks)
    if state in ("blank", "remasked"):
        color = BAD if state == "remasked" else BLANK_TEXT
        return Chip(state, "[MASK]", color, GAP_SPACE, text_width("[MASK]", MASK_SIZE) + 2 * CHIP_PAD_X)
    shown = drawable(shown_text(raw))
    color = MUTED if breaks else CONFIDENCE[confidence_class(float(token.get("confidence", 0.0)))]
    kind = "new" if state == "new" else "committed"
    pads = (0 if joined[0] else CHIP_PAD_X) + (0 if joined[1] else CHIP_PAD_X)
    gap = 0 if joined[0] else GAP_SPACE if spaced else GAP_TIGHT
    return Chip(kind, shown, color, gap, text_width(shown, CHIP_SIZE) + pads, joined, breaks)


def chips(tokens: Sequence[dict[str, Any]], unseen: str = "") -> list[Chip]:
    """The chips of a canvas, drawn as the page draws them (app/render/text.py): the pieces of one word joined,
    special tokens and line breaks as what they mean."""
    joins = word_joins([(t["state"], t["text"]) for t in tokens])
    out = [
        _token_chip(index, token, (joins[index], index + 1 < len(joins) and joins[index + 1]))
        for index, token in enumerate(tokens)
    ]
    for word in visible(unseen).split():  # the race's infill: text after the gap the AR lane never read
        shown = drawable(word)
        out.append(Chip("unseen", shown, MUTED, GAP_SPACE, text_width(shown, CHIP_SIZE) + 2 * CHIP_PAD_X))
    return out


def layout(row: Sequence[Chip], left: int, right: int) -> list[tuple[int, int, Chip]]:
    """(x, row index, chip) for each chip, wrapped to the width between `left` and `right` between words (the
    pieces of one word stay on one row), with a new row after a line break."""
    placed: list[tuple[int, int, Chip]] = []
    x, line = left, 0
    index = 0
    while index < len(row):
        end = index + 1
        while end < len(row) and row[end].joined[0]:
            end += 1
        word = row[index:end]
        start = x + word[0].gap if x > left else left
        if start + sum(c.width + (c.gap if k else 0) for k, c in enumerate(word)) > right and x > left:
            line += 1
            start = left
        for k, chip in enumerate(word):
            if k:
                start += chip.gap
            placed.append((start, line, chip))
            start += chip.width
        x = start
        if word[-1].breaks:
            line, x = line + 1, left
        index = end
    return placed


def rows_of(placed: Sequence[tuple[int, int, Chip]]) -> int:
    return placed[-1][1] + 1 if placed else 1


def _dashed(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], color: str, dash: int = 5, gap: int = 4) -> None:
    x0, y0, x1, y1 = box
    r = 5
    for x in range(x0 + r, x1 - r, dash + gap):
        end = min(x + dash, x1 - r)
        draw.line((x, y0, end, y0), fill=color, width=2)
        draw.line((x, y1 - 1, end, y1 - 1), fill=color, width=2)
    for y in range(y0 + r, y1 - r, dash + gap):
        end = min(y + dash, y1 - r)
        draw.line((x0, y, x0, end), fill=color, width=2)
        draw.line((x1 - 1, y, x1 - 1, end), fill=color, width=2)
    draw.arc((x0, y0, x0 + 2 * r, y0 + 2 * r), 180, 270, fill=color, width=2)
    draw.arc((x1 - 2 * r - 1, y0, x1 - 1, y0 + 2 * r), 270, 360, fill=color, width=2)
    draw.arc((x0, y1 - 2 * r - 1, x0 + 2 * r, y1 - 1), 90, 180, fill=color, width=2)
    draw.arc((x1 - 2 * r - 1, y1 - 2 * r - 1, x1 - 1, y1 - 1), 0, 90, fill=color, width=2)


def _draw_chip(draw: ImageDraw.ImageDraw, chip: Chip, x: int, y: int) -> None:
    big = font(CHIP_SIZE)
    box = (x, y, x + chip.width - 1, y + CHIP_H - 1)
    if chip.kind == "fixed":
        draw.text((x, y + CHIP_PAD_Y), chip.text, fill=chip.color, font=big)
    elif chip.kind in ("blank", "remasked"):
        if chip.kind == "blank":
            _dashed(draw, box, BLANK_BORDER)
        else:
            draw.rounded_rectangle(box, radius=6, outline=BAD, width=2)
        draw.text((x + chip.width // 2, y + CHIP_H // 2), chip.text, fill=chip.color, font=font(MASK_SIZE), anchor="mm")
    elif chip.kind == "unseen":
        _dashed(draw, box, MUTED, dash=2, gap=3)
        draw.text((x + CHIP_PAD_X, y + CHIP_PAD_Y), chip.text, fill=chip.color, font=big)
        middle = y + CHIP_H // 2
        draw.line((x + CHIP_PAD_X, middle, x + chip.width - CHIP_PAD_X, middle), fill=MUTED, width=2)
    else:
        # A word of several pieces is one shape: no outline between its pieces (a new piece keeps its fill).
        whole = not any(chip.joined)
        draw.rounded_rectangle(
            box, radius=6 if whole else 0, fill=NEW_BG if chip.kind == "new" else None, outline=LINE if whole else None, width=2
        )
        pad_left = 0 if chip.joined[0] else CHIP_PAD_X
        pad_right = 0 if chip.joined[1] else CHIP_PAD_X
        draw.text((x + pad_left, y + CHIP_PAD_Y), chip.text, fill=chip.color, font=big)
        if chip.kind == "new":
            underline = y + CHIP_H - 6
            draw.line((x + pad_left, underline, x + chip.width - pad_right, underline), fill=ACCENT, width=3)


Sprites = dict[tuple[Chip, str], Image.Image]


def draw_chips(image: Image.Image, placed: Sequence[tuple[int, int, Chip]], top: int, background: str, sprites: Sprites) -> None:
    """Each distinct chip is drawn once per GIF (a run repeats most of its chips from frame to frame), then pasted."""
    for x, line, chip in placed:
        if chip.width <= 0:
            continue
        sprite = sprites.get((chip, background))
        if sprite is None:
            sprite = sprites[chip, background] = Image.new("RGB", (chip.width, CHIP_H), background)
            _draw_chip(ImageDraw.Draw(sprite), chip, 0, 0)
        image.paste(sprite, (x, top + line * ROW_H))


def text_images(frames: Sequence[dict[str, Any]]) -> Iterator[Image.Image]:
    laid = [layout(chips(f["tokens"]), PAD, WIDTH - PAD) for f in frames]
    top = PAD + HEADER_H + 10
    height = top + max(rows_of(p) for p in laid) * ROW_H + PAD
    sprites: Sprites = {}
    for frame, placed in zip(frames, laid):
        image = Image.new("RGB", (WIDTH, height), BG)
        header(
            ImageDraw.Draw(image),
            PAD,
            PAD,
            f"step {frame['step']} of {frame['total']}",
            f"  \u00b7  {frame['decided']} of {frame['generated']} tokens decided",
        )
        draw_chips(image, placed, top, BG, sprites)
        yield image


def race_images(frames: Sequence[dict[str, Any]]) -> Iterator[Image.Image]:
    left, right = PAD + LANE_PAD, WIDTH - PAD - LANE_PAD
    laid = [[layout(chips(lane["tokens"], lane.get("unseen", "")), left, right) for lane in f["lanes"]] for f in frames]
    lanes = max(len(f["lanes"]) for f in frames)
    rows = [max((rows_of(p[i]) for p in laid if i < len(p)), default=1) for i in range(lanes)]
    heights = [LANE_PAD + LANE_TITLE_H + n * ROW_H - 8 + LANE_PAD for n in rows]
    top = PAD + HEADER_H + 10
    height = top + sum(heights) + LANE_GAP * (lanes - 1) + PAD
    sprites: Sprites = {}
    small = font(LANE_TITLE_SIZE)
    for frame, placed in zip(frames, laid):
        image = Image.new("RGB", (WIDTH, height), BG)
        draw = ImageDraw.Draw(image)
        header(draw, PAD, PAD, f"pass {frame['step']} of {frame['total']}", "  \u00b7  forward passes, one clock")
        y = top
        for lane, lane_placed, box_h in zip(frame["lanes"], placed, heights):
            finished = bool(lane.get("finished"))
            draw.rounded_rectangle(
                (PAD, y, WIDTH - PAD, y + box_h), radius=10, fill=PANEL, outline=GOOD if finished else LINE, width=2
            )
            title = drawable(LANE_TITLES.get(lane["lane"], str(lane["lane"])))
            status = f"   pass {lane['step']} of {lane['total']}  \u00b7  {lane['decided']}/{lane['generated']} decided"
            draw.text((left, y + LANE_PAD), title, fill=ACCENT, font=small)
            x = left + text_width(title, LANE_TITLE_SIZE)
            draw.text((x, y + LANE_PAD), status, fill=MUTED, font=small)
            if finished:
                draw.text((x + text_width(status, LANE_TITLE_SIZE), y + LANE_PAD), "   finished", fill=GOOD, font=small)
            draw_chips(image, lane_placed, y + LANE_PAD + LANE_TITLE_H, PANEL, sprites)
            y += box_h + LANE_GAP
        yield image
