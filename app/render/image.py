"""Image frames -> messages: x_t and predicted x0 as PNG, the noise-schedule plot, the classifier's meter and
its timeline over the run so far (when is it decided: app/render/decided.py); for a run that started from a real
held-out digit (the image lab: denoise from t, inpainting), the original and how far the run drifts from it."""

from __future__ import annotations

import base64
import dataclasses
import struct
import zlib
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import numpy as np

from app.render.decided import Timeline, decided_sentence, leading, timeline
from app.render.message import Rendered, pack
from app.render.notices import done_summary
from app.web.templating import stream_macros
from models.frames import ImageFrame
from models.image.data import held_out_digit
from models.image.masks import decode_mask
from models.image.request import ImageRequest, lab_problem


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (H, W) or (1, H, W) -> an 8-bit greyscale PNG, written directly (IHDR, one IDAT, IEND).

    For a 28x28 digit this is ~5x cheaper than PIL's encoder (whose per-call setup dominates at this size),
    and the render thread encodes two images a step."""
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[0]
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width = array.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # each scanline starts with filter type 0 (none)
    rows[:, 1:] = array
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit depth, greyscale, no interlace
    return b"".join(
        (_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(rows.tobytes())), _chunk(b"IEND", b""))
    )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_base64(image: np.ndarray) -> str:
    """uint8 (H, W) or (1, H, W) -> base64 PNG."""
    return base64.b64encode(png_bytes(image)).decode("ascii")


PLOT_W, PLOT_H, PLOT_PAD = 320, 140, 28


def _plot_xy(t: float, level: float) -> tuple[float, float]:
    x = PLOT_PAD + (t / 999.0) * (PLOT_W - 2 * PLOT_PAD)
    y = PLOT_H - PLOT_PAD - level * (PLOT_H - 2 * PLOT_PAD)
    return round(x, 1), round(y, 1)


@lru_cache(maxsize=8)
def _schedule_path(schedule: bytes) -> str:
    levels = np.frombuffer(schedule, dtype=np.float64)
    points = [_plot_xy(t, float(levels[t])) for t in range(0, len(levels), 10)] + [_plot_xy(999, float(levels[-1]))]
    return "M" + " L".join(f"{x},{y}" for x, y in points)


def schedule_plot(schedule: np.ndarray, timestep: int, noise_level: float) -> SimpleNamespace:
    """Coordinates for the noise-schedule SVG: the curve sqrt(1 - alpha_bar_t) and the current step."""
    path = _schedule_path(np.ascontiguousarray(schedule, dtype=np.float64).tobytes())
    x, y = _plot_xy(timestep, noise_level)
    return SimpleNamespace(
        w=PLOT_W,
        h=PLOT_H,
        pad=PLOT_PAD,
        path=path,
        x=x,
        y=y,
        x0=PLOT_PAD,
        x1=PLOT_W - PLOT_PAD,
        y0=PLOT_H - PLOT_PAD,
        y1=PLOT_PAD,
        label=f"t = {timestep}, noise {noise_level:.2f}",
    )


def image_status(frame: ImageFrame) -> str:
    return f"step {frame.step} of {frame.total}, timestep {frame.timestep}, noise level {frame.noise_level:.2f}"


def frame_probabilities(frame: ImageFrame) -> tuple[float, ...]:
    """The classifier's probabilities as the messages carry them (4 decimals); () without a classifier."""
    return tuple(round(float(p), 4) for p in frame.digit_probabilities[0]) if frame.digit_probabilities else ()


@dataclasses.dataclass(frozen=True)
class LabSource:
    """What an image-lab run started from (captions and the done sentence): test digit no. `index`, its label,
    and either the timestep it was noised to or, when inpainting, None."""

    index: int
    label: int
    start_t: int | None


def lab_source(request: ImageRequest) -> LabSource | None:
    if request.source is None:
        return None
    return LabSource(request.source, held_out_digit(request.source)[1], None if request.mask else request.start_t or 999)


def _generated(frame: ImageFrame) -> np.ndarray:
    """The pixels the run makes: all of them, or the mask's when inpainting."""
    return np.ones(frame.xt.shape[-2:], bool) if frame.keep is None else ~frame.keep


def drift_percent(image: np.ndarray, frame: ImageFrame) -> float:
    """Mean |image - the original| over the generated pixels, in % of the grey range."""
    assert frame.reference is not None
    difference = np.abs(np.asarray(image)[0].astype(np.int16) - frame.reference.astype(np.int16))
    return round(float(difference[_generated(frame)].mean()) / 2.55, 1)


def kept_max_change(frame: ImageFrame) -> int:
    """The largest change, in grey levels, of x_t on the pixels an inpainting run keeps."""
    assert frame.reference is not None and frame.keep is not None
    difference = np.abs(frame.xt[0].astype(np.int16) - frame.reference.astype(np.int16))
    return int(difference[frame.keep].max()) if frame.keep.any() else 0


def shown_original(reference: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """The original as the page shows it: with the pixels to fill hatched when inpainting."""
    if keep is None:
        return reference
    rows, cols = np.indices(reference.shape)
    hatch = np.where((rows + cols) % 4 < 2, 150, 90).astype(np.uint8)
    return np.where(keep, reference, hatch)


def _lab_view(reference: np.ndarray, keep: np.ndarray | None, source: LabSource, drift: str) -> SimpleNamespace:
    how = "pixels to fill hatched" if keep is not None else f"noised to t = {source.start_t}"
    return SimpleNamespace(
        original_png=png_base64(shown_original(reference, keep)),
        caption=f"test digit no. {source.index} (a {source.label}), {how}",
        drift=drift,
        drift_label="x0 vs original, filled pixels" if keep is not None else "x0 vs original",
    )


def lab_preview(request: ImageRequest) -> SimpleNamespace | None:
    """Before a lab run's first frame: the original is already known, so the placeholder shows it."""
    source = lab_source(request)
    if source is None or lab_problem(request):
        return None
    keep = None if request.mask is None else ~decode_mask(request.mask)
    return _lab_view(held_out_digit(source.index)[0], keep, source, "\u2013")


def frame_header(frame: ImageFrame, ms_per_step: float) -> dict[str, Any]:
    """The fields every image frame message starts with (the image page's and the grid's)."""
    return {
        "type": "frame",
        "step": frame.step,
        "total": frame.total,
        "timestep": frame.timestep,
        "noise_level": round(float(frame.noise_level), 5),
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_per_step, 2),
    }


def render_image_frame(
    frame: ImageFrame,
    ms_per_step: float,
    schedule: np.ndarray,
    history: list[tuple[float, ...]] | None = None,
    source: LabSource | None = None,
) -> Rendered:
    """`history`: the run's probabilities by step, this frame's last (what the timeline draws). The HTML may be
    rendered later, after more steps were appended: it reads only the first `len(history)` entries. `source`: what
    an image-lab run started from (its frames carry the original: they add the drift from it)."""
    xt_png, x0_png = png_base64(frame.xt), png_base64(frame.x0)
    probs = list(frame_probabilities(frame))
    seen = history if history is not None else [tuple(probs)]
    steps_seen = len(seen)
    data = frame_header(frame, ms_per_step)
    data.update(xt_png=xt_png, x0_png=x0_png)
    if probs:
        data["digit_probabilities"] = probs
    if frame.note:
        data["note"] = frame.note
    reference = frame.reference if source is not None else None  # a lab run's original
    drift = drift_percent(frame.x0, frame) if reference is not None else None
    if reference is not None:
        data["drift"] = drift
        if frame.step == 0:  # the original once, with the pixels to fill hatched when inpainting
            data["original_png"] = png_base64(shown_original(reference, frame.keep))
    meter = None
    if probs:
        best = leading(probs)
        meter = SimpleNamespace(digit=best, percent=round(probs[best] * 100))

    def html() -> str:
        strip = timeline(seen[:steps_seen], frame.total) if probs else None
        view = _frame_view(frame, xt_png, x0_png, ms_per_step, schedule, meter, strip)
        if source is not None and reference is not None:
            view.lab = _lab_view(reference, frame.keep, source, f"{drift}%")
        return stream_macros().image_frame(view)

    return pack(data, html)


def _frame_view(
    frame: ImageFrame,
    xt_png: str,
    x0_png: str,
    ms_per_step: float,
    schedule: np.ndarray,
    meter: SimpleNamespace | None,
    strip: Timeline | None,
) -> SimpleNamespace:
    return SimpleNamespace(
        step=frame.step,
        total=frame.total,
        status=image_status(frame),
        xt_png=xt_png,
        x0_png=x0_png,
        timestep=frame.timestep,
        noise_level=f"{frame.noise_level:.2f}",
        forward_passes=frame.forward_passes,
        ms_per_step=f"{ms_per_step:.1f}",
        plot=schedule_plot(schedule, frame.timestep, float(frame.noise_level)),
        meter=meter,
        timeline=strip,
        note=frame.note,
        lab=None,
    )


def lab_sentence(frame: ImageFrame, source: LabSource, final_digit: int | None, drift: float) -> str:
    """How far an image-lab run ended from the digit it started from, in words."""
    reads = f"; the classifier reads a {final_digit}" if final_digit is not None else ""
    if frame.keep is not None:
        kept, filled = int(frame.keep.sum()), int((~frame.keep).sum())
        return (
            f"Kept {kept} pixels of test digit no. {source.index} (a {source.label}): their largest change is "
            f"{kept_max_change(frame)} grey levels. The {filled} filled pixels differ from the original by "
            f"{drift}% on average{reads}."
        )
    return (
        f"From test digit no. {source.index} (a {source.label}) noised to t = {source.start_t}: the result is "
        f"{drift}% from it on average (mean |difference| per pixel){reads}."
    )


def render_image_done(
    frame: ImageFrame, ms_total: float, history: list[tuple[float, ...]] | None = None, source: LabSource | None = None
) -> Rendered:
    """`history`: the run's probabilities by step (step 0 first). `decided_at`: the first step at which the
    final digit (the classifier's pick at the last step) had more than 50%; null if never or no classifier.
    An image-lab run (`source`) adds its drift from the original (and, inpainting, the kept pixels' change)."""
    steps = max(frame.total, 1)
    final_probs = frame_probabilities(frame)
    history = history if history is not None else [final_probs]
    decided, clause, sentence = None, "", ""
    if final_probs and history:
        decided, clause, sentence = decided_sentence(history, leading(final_probs), frame.total)
    data = {
        "type": "done",
        "png": png_base64(frame.xt),
        "steps": frame.total,
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_total / steps, 2),
        "decided_at": decided,
    }
    lab = ""
    if source is not None and frame.reference is not None:
        drift = data["drift"] = drift_percent(frame.xt, frame)
        if frame.keep is not None:
            data["kept_max_change"] = kept_max_change(frame)
        lab = lab_sentence(frame, source, leading(final_probs) if final_probs else None, drift)
    summary = done_summary(frame.total, frame.forward_passes, ms_total)
    if clause:
        summary = f"{summary[:-1]}; {clause}."
    view = SimpleNamespace(summary=summary, sentence=sentence, lab=lab)
    return pack(data, lambda: stream_macros().image_done(view), target="#notice", swap="outerHTML")


class ImageRun:
    """One image run: it keeps the classifier's probabilities of every step so far, for the timeline."""

    def __init__(self, schedule: np.ndarray, source: LabSource | None = None) -> None:
        self.schedule = schedule
        self.source = source
        self.history: list[tuple[float, ...]] = []

    def frame(self, frame: ImageFrame, ms_per_step: float) -> Rendered:
        self.history.append(frame_probabilities(frame))
        if frame.step == 0 and self.source is not None and self.source.start_t is not None:
            # the sampler starts at the first of its timesteps at or below the one asked for: say where it did
            self.source = dataclasses.replace(self.source, start_t=frame.timestep)
        return render_image_frame(frame, ms_per_step, self.schedule, self.history, self.source)

    def done(self, frame: ImageFrame, ms_total: float) -> Rendered:
        return render_image_done(frame, ms_total, self.history, self.source)
