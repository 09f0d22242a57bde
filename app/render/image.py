"""Image frames -> messages: x_t and predicted x0 as PNG, the noise-schedule plot, the classifier's meter and
its timeline over the run so far (when is it decided: app/render/decided.py)."""

from __future__ import annotations

import base64
import struct
import zlib
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import numpy as np

from app.messages import Rendered, done_summary, pack
from app.render.decided import Timeline, decided_sentence, leading, timeline
from app.templating import stream_macros
from models.frames import ImageFrame


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


def render_image_frame(
    frame: ImageFrame,
    ms_per_step: float,
    schedule: np.ndarray,
    history: list[tuple[float, ...]] | None = None,
) -> Rendered:
    """`history`: the run's probabilities by step, this frame's last (what the timeline draws). The HTML may be
    rendered later, after more steps were appended: it reads only the first `len(history)` entries."""
    xt_png, x0_png = png_base64(frame.xt), png_base64(frame.x0)
    probs = list(frame_probabilities(frame))
    seen = history if history is not None else [tuple(probs)]
    steps_seen = len(seen)
    data: dict[str, Any] = {
        "type": "frame",
        "step": frame.step,
        "total": frame.total,
        "timestep": frame.timestep,
        "noise_level": round(float(frame.noise_level), 5),
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_per_step, 2),
        "xt_png": xt_png,
        "x0_png": x0_png,
    }
    if probs:
        data["digit_probabilities"] = probs
    if frame.note:
        data["note"] = frame.note
    meter = None
    if probs:
        best = leading(probs)
        meter = SimpleNamespace(digit=best, percent=round(probs[best] * 100))

    def html() -> str:
        strip = timeline(seen[:steps_seen], frame.total) if probs else None
        return stream_macros().image_frame(_frame_view(frame, xt_png, x0_png, ms_per_step, schedule, meter, strip))

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
    )


def render_image_done(frame: ImageFrame, ms_total: float, history: list[tuple[float, ...]] | None = None) -> Rendered:
    """`history`: the run's probabilities by step (step 0 first). `decided_at`: the first step at which the
    final digit (the classifier's pick at the last step) had more than 50%; null if never or no classifier."""
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
    summary = done_summary(frame.total, frame.forward_passes, ms_total)
    if clause:
        summary = f"{summary[:-1]}; {clause}."
    view = SimpleNamespace(summary=summary, sentence=sentence)
    return pack(data, lambda: stream_macros().image_done(view), target="#notice", swap="outerHTML")


class ImageRun:
    """One image run: it keeps the classifier's probabilities of every step so far, for the timeline."""

    def __init__(self, schedule: np.ndarray) -> None:
        self.schedule = schedule
        self.history: list[tuple[float, ...]] = []

    def frame(self, frame: ImageFrame, ms_per_step: float) -> Rendered:
        self.history.append(frame_probabilities(frame))
        return render_image_frame(frame, ms_per_step, self.schedule, self.history)

    def done(self, frame: ImageFrame, ms_total: float) -> Rendered:
        return render_image_done(frame, ms_total, self.history)
