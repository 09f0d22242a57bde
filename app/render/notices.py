"""The notices a run's status line shows: waiting in line, an error, the done summary."""

from __future__ import annotations

from app.render.message import Rendered, pack
from app.web.templating import stream_macros


def done_summary(steps: int, forward_passes: int, ms_total: float) -> str:
    """The done notice of a text or an image run."""
    return f"Done: {steps} steps, {forward_passes} forward passes, {ms_total / max(steps, 1):.1f} ms per step."


def render_queued(position: int, eta_seconds: float) -> Rendered:
    eta = max(1, round(eta_seconds))
    data = {"type": "queued", "position": position, "eta_seconds": eta}
    text = f"Waiting for a free slot: position {position} in line, about {eta} s."
    return pack(data, lambda: stream_macros().notice(text, "queued"), target="#notice", swap="outerHTML")


def render_error(message: str) -> Rendered:
    data = {"type": "error", "message": message}
    return pack(data, lambda: stream_macros().notice(message, "error"), target="#notice", swap="outerHTML")
