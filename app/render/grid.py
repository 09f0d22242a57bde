"""Grid frames -> messages: 16 samples of one request (one batched forward pass a step) as one tiled x_t and one
tiled x0 PNG a step (4x4 tiles of 28x28, `models.image.grid.tile`), the classifier's label under each x0 tile, and
the done message's count of tiles read as the digit asked for.

On the page each sheet is one PNG inside an SVG (the CSP forbids style attributes, so positions are SVG
coordinates, computed here): the PNG is defined once and each tile is a 28x28 window onto it (`<use>` in a nested
viewBox), so the gaps between tiles and the labels under them cost no pixels of the PNG."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from types import SimpleNamespace

from app.render.decided import leading
from app.render.image import frame_header, image_status, png_base64
from app.render.message import Rendered, pack
from app.render.notices import done_summary
from app.web.templating import stream_macros
from models.frames import ImageFrame
from models.image.grid import COLUMNS, TILES, tile
from models.image.request import ImageRequest

SIZE = 28  # a tile's pixels a side
GAP = 2  # between tiles, in pixels of the picture
LABEL = 9  # the band under each x0 tile that holds its label


def verdicts(frame: ImageFrame) -> list[tuple[int, float]]:
    """Each tile's (digit, probability) as the classifier reads its x0; [] without a classifier (or at step 0)."""
    return [(leading(p), round(float(p[leading(p)]), 4)) for p in frame.digit_probabilities if p]


def matches(found: Sequence[tuple[int, float]], digit: int | None) -> int | None:
    return sum(1 for read, _ in found if read == digit) if digit is not None and found else None


def sheet(
    png: str | None, ident: str, label: str, found: Sequence[tuple[int, float]] | None, digit: int | None
) -> SimpleNamespace:
    """One tiled picture: `found` the tiles' labels (None: no label band, the x_t sheet); png None: empty tiles
    of the same size (the placeholder)."""
    band = LABEL if found is not None else 0
    rows = -(-TILES // COLUMNS)
    tiles = []
    for index in range(TILES):
        row, column = divmod(index, COLUMNS)
        x, y = column * (SIZE + GAP), row * (SIZE + GAP + band)
        text, miss = "", False
        if found and index < len(found):
            read, probability = found[index]
            text, miss = f"{read} {probability * 100:.0f}%", digit is not None and read != digit
        tiles.append(
            SimpleNamespace(
                x=x, y=y, sx=column * SIZE, sy=row * SIZE, text=text, miss=miss, tx=x + SIZE / 2, ty=y + SIZE + band - 2
            )
        )
    return SimpleNamespace(
        png=png,
        id=ident,
        label=label,
        size=SIZE,
        width=COLUMNS * SIZE + (COLUMNS - 1) * GAP,
        height=rows * (SIZE + band) + (rows - 1) * GAP,
        sheet_width=COLUMNS * SIZE,
        sheet_height=rows * SIZE,
        tiles=tiles,
    )


def placeholder_sheets() -> list[tuple[SimpleNamespace, str]]:
    """The two sheets before a run, with the frame's boxes (no layout jump when the first frame lands)."""
    return [(sheet(None, "", "", None, None), "xt"), (sheet(None, "", "", [], None), "x0")]


class GridRun:
    """One grid run: the request (the done message counts the tiles read as its digit)."""

    def __init__(self, request: ImageRequest) -> None:
        self.request = request

    def frame(self, frame: ImageFrame, ms_per_step: float) -> Rendered:
        xt_png, x0_png = png_base64(tile(frame.xt)), png_base64(tile(frame.x0))
        found = verdicts(frame)
        digit = self.request.digit
        data = frame_header(frame, ms_per_step)
        data.update(tiles=len(frame.xt), columns=COLUMNS, xt_png=xt_png, x0_png=x0_png)
        if found:
            data["classes"] = [read for read, _ in found]
            data["confidences"] = [probability for _, probability in found]
        count = matches(found, digit)
        counters = [
            (f"{frame.step}/{frame.total}", "step"),
            (frame.timestep, "timestep t"),
            (frame.forward_passes, f"forward passes, {len(frame.xt)} images each"),
            (f"{ms_per_step:.1f}", "ms/step"),
        ]
        if count is not None:
            counters.append((f"{count}/{len(found)}", f"read as {digit}"))

        def html() -> str:
            view = SimpleNamespace(
                step=frame.step,
                total=frame.total,
                status=image_status(frame),
                counters=counters,
                xt=sheet(xt_png, f"grid-xt-{frame.step}", f"16 noisy states x_t at step {frame.step}", None, digit),
                x0=sheet(
                    x0_png, f"grid-x0-{frame.step}", _x0_label(frame.step, found, digit), found if frame.step else [], digit
                ),
            )
            return stream_macros().grid_frame(view)

        return pack(data, html)

    def done(self, frame: ImageFrame, ms_total: float) -> Rendered:
        found = verdicts(frame)
        digit = self.request.digit
        count = matches(found, digit)
        data = {
            "type": "done",
            "png": png_base64(tile(frame.xt)),
            "steps": frame.total,
            "forward_passes": frame.forward_passes,
            "ms_per_step": round(ms_total / max(frame.total, 1), 2),
            "tiles": len(frame.xt),
            "digit": digit,
            "classes": [read for read, _ in found] if found else None,
            "matches": count,
        }
        summary = done_summary(frame.total, frame.forward_passes, ms_total)
        summary = f"{summary[:-1]} ({len(frame.xt)} images in each pass). {reading(found, digit, len(frame.xt))}"
        return pack(data, lambda: stream_macros().notice(summary, "done"), target="#notice", swap="outerHTML")


def reading(found: Sequence[tuple[int, float]], digit: int | None, tiles: int) -> str:
    """The done sentence: how many tiles the classifier reads as the digit asked for (or what it reads), and how sure
    it is of them: the run's quality beside its time."""
    if not found:
        return "No digit classifier is loaded, so nothing reads the tiles."
    if digit is not None:
        sure = [probability for read, probability in found if read == digit]
        confidence = (
            f", with a mean confidence of {sum(sure) / len(sure) * 100:.0f}% (lowest {min(sure) * 100:.0f}%)" if sure else ""
        )
        return f"The classifier reads {matches(found, digit)} of the {tiles} as the {digit} asked for{confidence}."
    counts = Counter(read for read, _ in found)
    return (
        "No digit was asked for; the classifier reads "
        + ", ".join(f"{count} as {read}" for read, count in sorted(counts.items()))
        + "."
    )


def _x0_label(step: int, found: Sequence[tuple[int, float]], digit: int | None) -> str:
    label = f"16 predicted clean images x0 at step {step}"
    count = matches(found, digit)
    return f"{label}, {count} of {len(found)} read as {digit}" if count is not None else label
