"""Frames -> outgoing messages. Python decides (classes, counters, wording); templates render.

Each frame becomes one `Rendered`: the same JSON message twice, once with a `content` field holding the
HTML fragment (what htmx's hx-ws swaps into the page) and once without (for `?format=json` clients).
Both are serialised once, in the worker thread that computed the frame, and shared by every subscriber.
"""

from __future__ import annotations

import base64
import io
import json
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from time import perf_counter
from typing import Any

import numpy as np
from fastapi.templating import Jinja2Templates
from PIL import Image

from app.protocol import ImageRequest, TextRequest
from app.settings import REPO_ROOT
from models.frames import BLANK, FIXED, NEW, REMASKED, ImageFrame, TextFrame, TextToken

templates = Jinja2Templates(directory=REPO_ROOT / "templates")
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def stream_macros() -> Any:
    """The fragments the websockets send live as macros in templates/stream.html (one file, one job)."""
    return templates.env.get_template("stream.html").module


@dataclass(frozen=True, slots=True)
class Rendered:
    """One outgoing message, serialised for both formats."""

    type: str  # "frame" | "done"
    html: str  # JSON text with "content" (htmx hx-ws)
    json: str  # JSON text without it (?format=json)

    @property
    def nbytes(self) -> int:
        return len(self.html) + len(self.json) + 64


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _pack(data: dict[str, Any], content: str, **swap: str) -> Rendered:
    return Rendered(data["type"], _dump({**data, "content": content, **swap}), _dump(data))


# ---------------------------------------------------------------------------------------------------------
# Text


def confidence_class(confidence: float) -> str:
    """Five colour buckets, low (warm) to high (cool)."""
    return f"c{min(4, max(0, int(confidence * 5)))}"


def visible(text: str) -> str:
    """A token as a person can read it: newlines as a return sign, other control bytes as <XX>."""
    out = []
    for char in text:
        if char == "\n":
            out.append("\u23ce")
        elif unicodedata.category(char) in ("Cc", "Cs") and char != "\t":
            out.append(f"<{ord(char):02X}>")
        else:
            out.append(char)
    return "".join(out)


def token_view(index: int, token: TextToken) -> dict[str, Any]:
    text = token.text
    shown = visible(text).strip() or ("\u2423" if text else "")
    classes = ["tok"]
    title = ""
    if token.state == FIXED:
        classes.append("fixed")
    elif token.state in (BLANK, REMASKED):
        classes.append("blank")
        if token.state == REMASKED:
            classes.append("remasked")
            title = f"sent back to blank (remasked {token.remask_count}x)"
        else:
            title = f"blank; top guess {token.guess.strip()!r}" if token.guess else "blank"
    else:
        classes.append(confidence_class(token.confidence))
        if token.state == NEW:
            classes.append("new")
        if token.remask_count:
            classes.append("redecided")
        alts = ", ".join(f"{a.text.strip()!r} {a.probability:.0%}" for a in token.alternatives[:5])
        title = f"committed at step {token.committed_at}, confidence {token.confidence:.0%}"
        if token.remask_count:
            title += f", re-decided {token.remask_count}x"
        if alts:
            title += f"; considered {alts}"
    if text[:1].isspace() or index == 0 or token.state in (BLANK, REMASKED):
        classes.append("sp")
    return {"text": shown, "guess": visible(token.guess).strip(), "classes": " ".join(classes), "title": title}


def text_status(frame: TextFrame) -> str:
    return f"step {frame.step} of {frame.total}, {frame.decided} of {frame.generated} tokens decided"


def render_text_frame(frame: TextFrame, ms_per_step: float) -> Rendered:
    data = {
        "type": "frame",
        "step": frame.step,
        "total": frame.total,
        "masked": frame.masked,
        "decided": frame.decided,
        "generated": frame.generated,
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_per_step, 2),
        "committed": list(frame.committed),
        "remasked": list(frame.remasked),
        "tokens": [
            {"text": t.text, "state": t.state, "confidence": round(t.confidence, 4), "guess": t.guess}
            for t in frame.tokens
        ],
    }
    view = {
        "step": frame.step,
        "total": frame.total,
        "status": text_status(frame),
        "tokens": [token_view(i, t) for i, t in enumerate(frame.tokens)],
        "decided": frame.decided,
        "generated": frame.generated,
        "masked": frame.masked,
        "forward_passes": frame.forward_passes,
        "ms_per_step": f"{ms_per_step:.1f}",
        "last": frame.step == frame.total,
    }
    return _pack(data, stream_macros().text_frame(view))


def render_text_done(frame: TextFrame, ms_total: float) -> Rendered:
    steps = max(frame.total, 1)
    data = {
        "type": "done",
        "text": frame.text,
        "steps": frame.total,
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_total / steps, 2),
    }
    summary = f"Done: {frame.total} steps, {frame.forward_passes} forward passes, {ms_total / steps:.1f} ms per step."
    return _pack(data, stream_macros().notice(summary, "done"), target="#notice", swap="outerHTML")


def text_producer(sample: Callable[..., Iterator[TextFrame]], request: TextRequest) -> Callable[..., Iterator[Rendered]]:
    def produce(should_stop: Callable[[], bool]) -> Iterator[Rendered]:
        last: TextFrame | None = None
        total_ms = 0.0
        started = perf_counter()
        for frame in sample(request, should_stop):
            elapsed = (perf_counter() - started) * 1000
            total_ms += elapsed if frame.step > 0 else 0.0
            yield render_text_frame(frame, elapsed)
            last = frame
            started = perf_counter()
        if last is not None and last.step == last.total and not should_stop():
            yield render_text_done(last, total_ms)

    return produce


# ---------------------------------------------------------------------------------------------------------
# Image


def png_base64(image: np.ndarray) -> str:
    """uint8 (H, W) or (1, H, W) -> base64 PNG."""
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[0]
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


PLOT_W, PLOT_H, PLOT_PAD = 320, 140, 28


def _plot_xy(t: float, level: float) -> tuple[float, float]:
    x = PLOT_PAD + (t / 999.0) * (PLOT_W - 2 * PLOT_PAD)
    y = PLOT_H - PLOT_PAD - level * (PLOT_H - 2 * PLOT_PAD)
    return round(x, 1), round(y, 1)


@lru_cache(maxsize=8)
def _schedule_path(schedule: tuple[float, ...]) -> str:
    points = [_plot_xy(t, schedule[t]) for t in range(0, len(schedule), 10)] + [_plot_xy(999, schedule[-1])]
    return "M" + " L".join(f"{x},{y}" for x, y in points)


def schedule_plot(schedule: np.ndarray, timestep: int, noise_level: float) -> dict[str, Any]:
    """Coordinates for the noise-schedule SVG: the curve sqrt(1 - alpha_bar_t) and the current step."""
    path = _schedule_path(tuple(float(v) for v in schedule))
    x, y = _plot_xy(timestep, noise_level)
    return {
        "w": PLOT_W,
        "h": PLOT_H,
        "pad": PLOT_PAD,
        "path": path,
        "x": x,
        "y": y,
        "x0": PLOT_PAD,
        "x1": PLOT_W - PLOT_PAD,
        "y0": PLOT_H - PLOT_PAD,
        "y1": PLOT_PAD,
        "label": f"t = {timestep}, noise {noise_level:.2f}",
    }


def image_status(frame: ImageFrame) -> str:
    return f"step {frame.step} of {frame.total}, timestep {frame.timestep}, noise level {frame.noise_level:.2f}"


def render_image_frame(frame: ImageFrame, ms_per_step: float, schedule: np.ndarray) -> Rendered:
    xt_png, x0_png = png_base64(frame.xt), png_base64(frame.x0)
    probs = [round(p, 4) for p in frame.digit_probabilities[0]] if frame.digit_probabilities else []
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
        best = int(np.argmax(probs))
        meter = {"digit": best, "percent": round(probs[best] * 100), "bucket": min(10, round(probs[best] * 10))}
    view = {
        "step": frame.step,
        "total": frame.total,
        "status": image_status(frame),
        "xt_png": xt_png,
        "x0_png": x0_png,
        "timestep": frame.timestep,
        "noise_level": f"{frame.noise_level:.2f}",
        "forward_passes": frame.forward_passes,
        "ms_per_step": f"{ms_per_step:.1f}",
        "plot": schedule_plot(schedule, frame.timestep, float(frame.noise_level)),
        "meter": meter,
        "note": frame.note,
    }
    return _pack(data, stream_macros().image_frame(view))


def render_image_done(frame: ImageFrame, ms_total: float) -> Rendered:
    steps = max(frame.total, 1)
    data = {
        "type": "done",
        "png": png_base64(frame.xt),
        "steps": frame.total,
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_total / steps, 2),
    }
    summary = f"Done: {frame.total} steps, {frame.forward_passes} forward passes, {ms_total / steps:.1f} ms per step."
    return _pack(data, stream_macros().notice(summary, "done"), target="#notice", swap="outerHTML")


def image_producer(
    sample: Callable[..., Iterator[ImageFrame]], request: ImageRequest, schedule: np.ndarray
) -> Callable[..., Iterator[Rendered]]:
    def produce(should_stop: Callable[[], bool]) -> Iterator[Rendered]:
        last: ImageFrame | None = None
        total_ms = 0.0
        started = perf_counter()
        for frame in sample(request, should_stop):
            elapsed = (perf_counter() - started) * 1000
            total_ms += elapsed if frame.step > 0 else 0.0
            yield render_image_frame(frame, elapsed, schedule)
            last = frame
            started = perf_counter()
        if last is not None and last.step == last.total and not should_stop():
            yield render_image_done(last, total_ms)

    return produce


# ---------------------------------------------------------------------------------------------------------
# Messages that are not frames


def render_queued(position: int) -> Rendered:
    data = {"type": "queued", "position": position}
    text = f"Waiting for a free slot: position {position} in line."
    return _pack(data, stream_macros().notice(text, "queued"), target="#notice", swap="outerHTML")


def render_error(message: str) -> Rendered:
    data = {"type": "error", "message": message}
    return _pack(data, stream_macros().notice(message, "error"), target="#notice", swap="outerHTML")
