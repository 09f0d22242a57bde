"""Frames -> outgoing messages. Python decides (classes, counters, wording); templates render.

Each frame becomes one `Rendered`: the same JSON message twice, once with a `content` field holding the
HTML fragment (what htmx's hx-ws swaps into the page) and once without (for `?format=json` clients).
Both are serialised once, in the engine's render thread, and shared by every subscriber: the event loop
only sends finished strings. Producers yield each frame as a deferred render (`functools.partial`), so the
sampler thread never waits for rendering (see app/engine.py).
"""

from __future__ import annotations

import base64
import json
import struct
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from time import perf_counter
from types import SimpleNamespace
from typing import Any

import numpy as np
from fastapi.templating import Jinja2Templates

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
    """Serialise `data` once; the HTML message is the same text with `content` (and overrides) appended,
    byte for byte what dumping `{**data, "content": content, **swap}` gives."""
    plain = _dump(data)
    return Rendered(data["type"], plain[:-1] + "," + _dump({"content": content, **swap})[1:], plain)


# ---------------------------------------------------------------------------------------------------------
# Text


def confidence_class(confidence: float) -> str:
    """Five colour buckets, low (warm) to high (cool)."""
    return f"c{min(4, max(0, int(confidence * 5)))}"


def visible(text: str) -> str:
    """A token as a person can read it: newlines as a return sign, other control bytes as <XX>."""
    if text.isprintable():  # the common case: no control (Cc) or surrogate (Cs) characters, no newline
        return text
    out = []
    for char in text:
        if char == "\n":
            out.append("\u23ce")
        elif unicodedata.category(char) in ("Cc", "Cs") and char != "\t":
            out.append(f"<{ord(char):02X}>")
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class TokenView:
    """What the template needs for one chip. Attributes, not a dict: Jinja looks `t.text` up as an attribute
    first, and on a dict that lookup fails with an exception before it tries the key (3x slower per frame)."""

    text: str
    guess: str
    classes: str
    title: str


def token_view(index: int, token: TextToken) -> TokenView:
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
    return TokenView(shown, visible(token.guess).strip(), " ".join(classes), title)


def text_status(frame: TextFrame) -> str:
    return f"step {frame.step} of {frame.total}, {frame.decided} of {frame.generated} tokens decided"


def render_text_frame(frame: TextFrame, ms_per_step: float) -> Rendered:
    masked, generated = frame.masked, frame.generated  # each a pass over the canvas: count once
    decided = generated - masked
    data = {
        "type": "frame",
        "step": frame.step,
        "total": frame.total,
        "masked": masked,
        "decided": decided,
        "generated": generated,
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_per_step, 2),
        "committed": list(frame.committed),
        "remasked": list(frame.remasked),
        "tokens": [
            {"text": t.text, "state": t.state, "confidence": round(t.confidence, 4), "guess": t.guess}
            for t in frame.tokens
        ],
    }
    view = SimpleNamespace(
        step=frame.step,
        total=frame.total,
        status=f"step {frame.step} of {frame.total}, {decided} of {generated} tokens decided",
        tokens=[token_view(i, t) for i, t in enumerate(frame.tokens)],
        decided=decided,
        generated=generated,
        masked=masked,
        forward_passes=frame.forward_passes,
        ms_per_step=f"{ms_per_step:.1f}",
        last=frame.step == frame.total,
    )
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


Deferred = Callable[[], Rendered]


def _producer(
    frames: Callable[[Callable[[], bool]], Iterator[Any]],
    render_frame: Callable[[Any, float], Rendered],
    render_done: Callable[[Any, float], Rendered],
) -> Callable[..., Iterator[Deferred]]:
    """Yields one deferred render per frame, then the done message if the run finished;
    `ms_per_step` is the sampler's own time for that step (rendering happens later, elsewhere)."""

    def produce(should_stop: Callable[[], bool]) -> Iterator[Deferred]:
        last = None
        total_ms = 0.0
        started = perf_counter()
        for frame in frames(should_stop):
            elapsed = (perf_counter() - started) * 1000
            total_ms += elapsed if frame.step > 0 else 0.0
            yield partial(render_frame, frame, elapsed)
            last = frame
            started = perf_counter()
        if last is not None and last.step == last.total and not should_stop():
            yield partial(render_done, last, total_ms)

    return produce


def text_producer(sample: Callable[..., Iterator[TextFrame]], request: TextRequest) -> Callable[..., Iterator[Deferred]]:
    return _producer(partial(sample, request), render_text_frame, render_text_done)


# ---------------------------------------------------------------------------------------------------------
# Image


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
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(rows.tobytes())),
                     _chunk(b"IEND", b"")))


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
        meter = SimpleNamespace(digit=best, percent=round(probs[best] * 100), bucket=min(10, round(probs[best] * 10)))
    view = SimpleNamespace(
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
        note=frame.note,
    )
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
) -> Callable[..., Iterator[Deferred]]:
    def render_frame(frame: ImageFrame, elapsed_ms: float) -> Rendered:
        return render_image_frame(frame, elapsed_ms, schedule)

    return _producer(partial(sample, request), render_frame, render_image_done)


# ---------------------------------------------------------------------------------------------------------
# Messages that are not frames


def render_queued(position: int) -> Rendered:
    data = {"type": "queued", "position": position}
    text = f"Waiting for a free slot: position {position} in line."
    return _pack(data, stream_macros().notice(text, "queued"), target="#notice", swap="outerHTML")


def render_error(message: str) -> Rendered:
    data = {"type": "error", "message": message}
    return _pack(data, stream_macros().notice(message, "error"), target="#notice", swap="outerHTML")
