"""Samplers side by side -> messages: each frame of the shared clock (`models.image.samplers_race`) with every
lane's x_t and predicted x0, its own step "n of N", forward passes, measured wall time and the classifier's verdict
on its x0; the done message with each lane's passes, wall time, final class and the step it was decided at
(`app.render.decided`, on the lane's own steps), and the fewest-steps lane against the most-steps one: its speed
and, in the next sentence, both lanes' quality on this run (the classifier's digit and confidence)."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from app.render.decided import decided_at, leading
from app.render.image import png_base64
from app.render.message import Rendered, dump_json, pack, with_content
from app.web.templating import stream_macros
from models.image.request import ImageSamplersRequest
from models.image.samplers_race import LANES, SamplerLane, SamplersFrame, lane_steps

LANE_TITLES = {"ddpm": "DDPM", "ddim": "DDIM", "dpm": "DPM-Solver++"}
LANE_NOTES = {
    "ddpm": "small stochastic steps: fresh noise goes back in at every step",
    "ddim": "deterministic steps: no noise added, so it can stride over the schedule",
    "dpm": "higher-order steps: each reuses the last step's estimate to stride further",
}


def ms_per_pass(lane: SamplerLane) -> float:
    return lane.wall_ms / lane.passes if lane.passes else 0.0


def verdict(probabilities: Sequence[float]) -> tuple[int, float] | None:
    """The classifier's digit and its probability, or None (no classifier, or nothing predicted yet)."""
    if not probabilities:
        return None
    best = leading(probabilities)
    return best, round(float(probabilities[best]), 4)


def verdict_text(found: tuple[int, float] | None) -> str:
    return f"{found[0]} ({found[1] * 100:.0f}%)" if found else "-"


def placeholder_lanes(request: ImageSamplersRequest) -> list[SimpleNamespace]:
    """The lanes before a run: the same boxes as a frame's, empty (no layout jump when the first frame lands)."""
    steps = lane_steps(request)
    return [
        SimpleNamespace(
            name=name,
            title=LANE_TITLES[name],
            note=LANE_NOTES[name],
            counters=[(f"0 of {steps[name]}", "step"), (0, "forward passes"), ("-", "ms wall time"), ("-", "classifier on x0")],
            finished=False,
            finish="",
            step=0,
            xt_png=None,
            x0_png=None,
        )
        for name in LANES
    ]


class SamplersRun:
    """One run's rendering state: each lane's last PNGs (a lane holding its state between its steps repeats them,
    encoded once) and each lane's classifier probabilities by its own step (for "decided at")."""

    def __init__(self, request: ImageSamplersRequest) -> None:
        self.request = request
        self.pngs: dict[tuple[str, str], tuple[int, str]] = {}
        self.history: dict[str, list[tuple[float, ...]]] = {name: [] for name in LANES}

    def _png(self, lane: SamplerLane, which: str) -> str | None:
        image = lane.xt if which == "xt" else lane.x0
        if image is None:
            return None
        known = self.pngs.get((lane.name, which))
        if known is not None and known[0] == lane.step:
            return known[1]
        encoded = png_base64(image)
        self.pngs[(lane.name, which)] = (lane.step, encoded)
        return encoded

    def _lane(self, lane: SamplerLane) -> tuple[dict[str, Any], SimpleNamespace]:
        history = self.history[lane.name]
        while len(history) <= lane.step:  # one entry a lane step: index = step, as `decided_at` reads it
            history.append(tuple(lane.digit_probabilities))
        xt_png, x0_png = self._png(lane, "xt"), self._png(lane, "x0")
        found = verdict(lane.digit_probabilities)
        data = {
            "lane": lane.name,
            "step": lane.step,
            "total": lane.total,
            "forward_passes": lane.passes,
            "wall_ms": lane.wall_ms,
            "finished": lane.finished,
            "xt_png": xt_png,
            "x0_png": x0_png,
            "digit_probabilities": [round(float(p), 4) for p in lane.digit_probabilities],
        }
        view = SimpleNamespace(
            name=lane.name,
            title=LANE_TITLES[lane.name],
            note=LANE_NOTES[lane.name],
            finished=lane.finished,
            finish=f"finished in {lane.wall_ms / 1000:.2f} s" if lane.finished else "",  # short: one line kept for it
            counters=[
                (f"{lane.step} of {lane.total}", "step"),
                (lane.passes, "forward passes"),
                (f"{lane.wall_ms:.0f}", "ms wall time"),
                (verdict_text(found), "classifier on x0"),
            ],
            step=lane.step,
            xt_png=xt_png,
            x0_png=x0_png,
        )
        return data, view

    def frame(self, frame: SamplersFrame, _ms: float) -> Rendered:
        lanes = [self._lane(lane) for lane in frame.lanes]
        data = {"type": "frame", "step": frame.step, "total": frame.total, "lanes": [d for d, _ in lanes]}
        plain = dump_json(data)
        status = f"frame {frame.step} of {frame.total}: " + ", ".join(
            f"{LANE_TITLES[lane.name]} step {lane.step} of {lane.total}" for lane in frame.lanes
        )

        def content() -> str:
            view = SimpleNamespace(step=frame.step, total=frame.total, status=status, lanes=[v for _, v in lanes])
            return stream_macros().samplers_frame(view)

        return Rendered("frame", plain, make_html=lambda: with_content(plain, content(), {}))

    def done(self, frame: SamplersFrame, _ms_total: float) -> Rendered:
        lanes, lines = [], []
        for lane in frame.lanes:
            found = verdict(lane.digit_probabilities)
            decided = decided_at(self.history[lane.name], found[0]) if found else None
            lanes.append(
                {
                    "lane": lane.name,
                    "steps": lane.total,
                    "forward_passes": lane.passes,
                    "wall_ms": lane.wall_ms,
                    "ms_per_pass": round(ms_per_pass(lane), 2),
                    "png": png_base64(lane.xt),
                    "final_class": {"digit": found[0], "probability": found[1]} if found else None,
                    "decided_at": decided,
                }
            )
            lines.append(lane_outcome(lane, found, decided))
        data = {"type": "done", "steps": frame.total, "digit": self.request.digit, "lanes": lanes}
        summary = "Done. " + "; ".join(
            f"{LANE_TITLES[lane.name]}: {lane.passes} passes in {lane.wall_ms / 1000:.2f} s" for lane in frame.lanes
        )
        summary += " (each lane's own sampler time, measured in this run)."

        def content() -> str:
            view = SimpleNamespace(summary=summary, lines=lines, comparison=comparison(frame.lanes, self.request.digit))
            return stream_macros().samplers_done(view)

        return pack(data, content, target="#notice", swap="outerHTML")


def lane_outcome(lane: SamplerLane, found: tuple[int, float] | None, decided: int | None) -> str:
    """One sentence a lane: what the classifier reads in its final image, and when that digit first passed 50%."""
    title = LANE_TITLES[lane.name]
    if found is None:
        return f"{title}: no digit classifier is loaded, so nothing reads its image."
    reads = f"{title}: the classifier reads {_article(found[0])} {found[0]} ({found[1] * 100:.0f}%)"
    if decided is None:
        return f"{reads}, never over 50% before the end."
    share = decided / max(lane.total, 1)
    return f"{reads}, decided at step {decided} of {lane.total} ({share:.0%} of its run)."


def comparison(lanes: Sequence[SamplerLane], digit: int | None) -> str:
    """The fewest-steps lane against the most-steps one, both counts measured: passes, and what they cost here; then
    what each drew, measured on this run, so the speed never stands without the quality of both."""
    ordered = sorted((lane for lane in lanes if lane.passes and lane.wall_ms), key=lambda lane: lane.passes)
    if len(ordered) < 2 or ordered[0].passes == ordered[-1].passes:
        return ""
    fast, slow = ordered[0], ordered[-1]
    time = slow.wall_ms / fast.wall_ms
    cost = f"{_times(time)} less wall time" if time >= 1 else f"{_times(1 / time)} more wall time"
    speed = (
        f"{LANE_TITLES[fast.name]} used {_times(slow.passes / fast.passes)} fewer forward passes than "
        f"{LANE_TITLES[slow.name]} and {cost} on this server."
    )
    return f"{speed} {quality(fast, slow, digit)}"


def quality(fast: SamplerLane, slow: SamplerLane, digit: int | None) -> str:
    """Both lanes' final images as the classifier reads them on this run: digit, confidence, and whether it is the
    digit asked for."""
    parts: list[str] = []
    for lane in (fast, slow):
        found = verdict(lane.digit_probabilities)
        if found is None:
            return "No digit classifier is loaded, so this run measures no quality to set beside the speed."
        if digit is None:
            asked = ""
        elif found[0] == digit:
            asked = ", the digit asked for"
        else:
            asked = f", not the {digit} asked for"
        image = "final image " if not parts else ""
        parts.append(f"{LANE_TITLES[lane.name]}'s {image}as {_article(found[0])} {found[0]} ({found[1] * 100:.0f}%{asked})")
    return f"Quality, measured on this run: the classifier reads {parts[0]} and {parts[1]}."


def _article(digit: int) -> str:
    return "an" if digit == 8 else "a"


def _times(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"
