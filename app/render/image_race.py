"""Image race frames -> messages: both lanes of a frame in one message (the autoregressive canvas with its cursor,
the DDPM's x_t and predicted x0), each lane's passes, wall time and the classifier's verdict, a finish badge;
the done message with both lanes measured and, with the forced mistake, whether each lane still drew the digit,
next to how often it does over the committed measurement (`models.image.race_recovery`, read at request time);
and the page's table of that measurement, per timing of the stroke in the DDPM (`page_view`).

The images are PNGs inside inline SVGs (the CSP forbids style attributes, so positions are SVG coordinates):
one SVG unit is one pixel, the cursor is a `<rect>` at its pixel and the forced stroke an outline path."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from markupsafe import Markup

from app.render.image import png_base64
from app.render.message import Rendered, dump_json, pack, with_content
from app.web.templating import stream_macros
from models.image.race_frames import AUTOREGRESSIVE, DIFFUSION, IMAGE_SIZE, ImageLane, ImageRaceFrame, mistake_step
from models.image.race_recovery import RECOVERY_FILE, Outcome, Recovery, load_recovery
from models.image.request import MISTAKE_TIMINGS, ImageRaceRequest

SIZE = IMAGE_SIZE  # pixels a side
LANE_TITLES = {AUTOREGRESSIVE: "Autoregressive (PixelCNN)", DIFFUSION: "Diffusion (DDPM)"}
LANE_NOTES = {
    AUTOREGRESSIVE: "paints one pixel a pass, left to right, top to bottom; a painted pixel is final",
    DIFFUSION: "refines every pixel at every pass: the noisy state x_t and its guess of the clean image x0",
}
WHY_COUNTS_DIFFER = (
    "Passes and wall time are both measured as the race runs, never picked: a PixelCNN pass reads only the few rows "
    "above its pixel, a DDPM pass runs the whole UNet over the image (both guidance halves in one batch), so a pass "
    "costs the two models different times; the numbers are this run's, on this server."
)


# The timing menu: when the stroke enters the DDPM (the PixelCNN's stays at its rows).
TIMING_CHOICES = [(timing, f"{timing}: after {share:.0%} of its steps") for timing, share in MISTAKE_TIMINGS.items()]


def ms_per_pass(lane: ImageLane) -> float:
    return lane.wall_ms / lane.passes if lane.passes else 0.0


def lane_title(name: str) -> str:
    return LANE_TITLES.get(name, name)


def verdict(probabilities: Sequence[float]) -> tuple[int, float] | None:
    """The classifier's digit and its probability, or None (no classifier loaded, or nothing to read yet)."""
    if not probabilities:
        return None
    best = int(np.argmax(probabilities))
    return best, float(probabilities[best])


def verdict_text(found: tuple[int, float] | None) -> str:
    return f"{found[0]} ({found[1] * 100:.0f}%)" if found else "-"


def outline(pixels: Iterable[int]) -> str:
    """An SVG path around a set of pixels (one unit each): every pixel edge that does not touch another pixel of
    the set, so a stroke of adjacent pixels gets one outline, not a grid."""
    cells = {divmod(p, SIZE) for p in pixels}
    parts: list[str] = []
    for row, column in sorted(cells):
        if (row - 1, column) not in cells:
            parts.append(f"M{column},{row}h1")
        if (row + 1, column) not in cells:
            parts.append(f"M{column},{row + 1}h1")
        if (row, column - 1) not in cells:
            parts.append(f"M{column},{row}v1")
        if (row, column + 1) not in cells:
            parts.append(f"M{column + 1},{row}v1")
    return "".join(parts)


class _PngMemo:
    """The last PNG of each picture of a lane: a finished lane repeats its image every frame, encoded once."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[bytes, str]] = {}

    def __call__(self, key: str, image: np.ndarray) -> str:
        raw = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
        found = self.last.get(key)
        if found is not None and found[0] == raw:
            return found[1]
        encoded = png_base64(image)
        self.last[key] = (raw, encoded)
        return encoded


def _picture(png: str, label: str, caption: Markup, forced: str, cursor: tuple[int, int] | None = None) -> SimpleNamespace:
    return SimpleNamespace(png=png, label=label, caption=caption, forced=forced, cursor=cursor, size=SIZE)


class ImageRaceRun:
    """One image race's rendering state: the PNG memo and the request (the done message judges the digit)."""

    def __init__(self, request: ImageRaceRequest, recovery_file: Path = RECOVERY_FILE) -> None:
        self.request = request
        self.recovery_file = recovery_file
        self.png = _PngMemo()

    def _lane(self, lane: ImageLane) -> tuple[dict[str, Any], SimpleNamespace]:
        image_png = self.png(f"{lane.name}:image", lane.image)
        x0_png = self.png(f"{lane.name}:x0", lane.guess) if lane.guess is not None else None
        probabilities = [round(float(p), 4) for p in lane.digit_probabilities]
        found = verdict(probabilities)
        data: dict[str, Any] = {
            "lane": lane.name,
            "forward_passes": lane.passes,
            "total_passes": lane.total_passes,
            "wall_ms": round(lane.wall_ms, 1),
            "finished": lane.finished,
            "cursor": lane.cursor,
            "forced": list(lane.forced),
            "image_png": image_png,
            "x0_png": x0_png,
            "digit_probabilities": probabilities,
        }
        forced = outline(lane.forced)
        if lane.name == AUTOREGRESSIVE:
            cursor = divmod(lane.cursor, SIZE) if lane.cursor is not None else None
            where = f", next pixel: row {cursor[0] + 1}, column {cursor[1] + 1}" if cursor else ""
            pictures = [
                _picture(
                    image_png,
                    f"autoregressive canvas after {lane.passes} passes{where}",
                    Markup("canvas; the yellow square: the next pixel" if cursor else "canvas, every pixel painted"),
                    forced,
                    (cursor[1], cursor[0]) if cursor else None,
                )
            ]
        else:
            xt_label = f"noisy state x_t after {lane.passes} passes"
            pictures = [_picture(image_png, xt_label, Markup("x<sub>t</sub> noisy state"), forced)]
            if x0_png is not None:
                pictures.append(
                    _picture(
                        x0_png,
                        f"predicted clean image after {lane.passes} passes",
                        Markup("predicted x<sub>0</sub>"),
                        forced,
                    )
                )
        seconds = lane.wall_ms / 1000
        view = SimpleNamespace(
            name=lane.name,
            title=lane_title(lane.name),
            note=LANE_NOTES.get(lane.name, ""),
            finished=lane.finished,
            finish=f"finished: {lane.passes} passes, {seconds:.2f} s" if lane.finished else "",
            counters=[
                (f"{lane.passes}/{lane.total_passes}", "forward passes"),
                (f"{ms_per_pass(lane):.1f}", "ms/pass"),
                (f"{seconds:.2f} s", "wall time"),
                (verdict_text(found), "classifier says"),
            ],
            pictures=pictures,
            stroke=bool(lane.forced),
        )
        return data, view

    def frame(self, race: ImageRaceFrame, _ms: float) -> Rendered:
        lanes = [self._lane(lane) for lane in race.lanes]
        passes = max((lane.total_passes for lane in race.lanes), default=0)
        data = {"type": "frame", "step": race.step, "total": race.total, "clock": race.clock, "lanes": [d for d, _ in lanes]}
        plain = dump_json(data)
        status = f"pass {race.clock} of {passes}: " + ", ".join(
            f"{lane_title(lane.name).split(' (')[0].lower()} {lane.passes} of {lane.total_passes} passes" for lane in race.lanes
        )

        def content() -> str:
            view = SimpleNamespace(
                step=race.step, total=race.total, clock=race.clock, passes=passes, status=status, lanes=[v for _, v in lanes]
            )
            return stream_macros().image_race_frame(view)

        return Rendered("frame", plain, make_html=lambda: with_content(plain, content(), {}))

    def done(self, race: ImageRaceFrame, _ms_total: float) -> Rendered:
        lanes = []
        outcomes: list[str] = []
        recovery = load_recovery(self.recovery_file) if self.request.mistake else None
        for lane in race.lanes:
            found = verdict(lane.digit_probabilities)
            lanes.append(
                {
                    "lane": lane.name,
                    "forward_passes": lane.passes,
                    "wall_ms": round(lane.wall_ms, 1),
                    "ms_per_pass": round(ms_per_pass(lane), 2),
                    "png": png_base64(lane.image),
                    "verdict": {"digit": found[0], "probability": round(found[1], 4)} if found else None,
                    "forced": list(lane.forced),
                }
            )
            if self.request.mistake:
                outcomes.append(mistake_outcome(lane, self.request, found, recovery))
        if self.request.mistake:
            for entry, sentence in zip(lanes, outcomes):
                entry["mistake"] = sentence
        data = {"type": "done", "steps": race.total, "digit": self.request.digit, "lanes": lanes}
        summary = "Done. " + " ".join(
            f"{lane_title(lane.name)}: {lane.passes} passes, {lane.wall_ms / 1000:.2f} s ({ms_per_pass(lane):.1f} ms a "
            f"pass), the classifier says {verdict_text(verdict(lane.digit_probabilities))}."
            for lane in race.lanes
        )

        def content() -> str:
            view = SimpleNamespace(summary=summary, verdict=image_race_verdict(race, self.request.digit), outcomes=outcomes)
            return stream_macros().image_race_done(view)

        return pack(data, content, target="#notice", swap="outerHTML")


def percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def _article(digit: int) -> str:
    return "an" if digit == 8 else "a"


def stroke_left(lane: ImageLane) -> float | None:
    """The mean share of full ink in the stroke's pixels of the lane's image (None without the stroke)."""
    pixels = list(lane.forced)
    if not pixels:
        return None
    return float(np.asarray(lane.image, dtype=np.float64).reshape(-1)[pixels].mean()) / 255


STROKE_KEPT, STROKE_GONE = 0.5, 0.15  # shares of full ink: kept at least half, washed out below a sixth


def stroke_fate(left: float | None, final: bool) -> str:
    """What became of the stroke, in words that cannot contradict the digit the image reads as: kept (so it became
    part of the drawing), faded, or washed out, with the measured share of its ink. `final`: painted pixels are."""
    if left is None:
        return "none of the stroke's ink is left"
    share = percent(left)
    if left >= STROKE_KEPT:
        why = ", as every painted pixel is final" if final else ""
        return f"the stroke stayed ({share} of its ink{why}) and became part of the drawing"
    if left >= STROKE_GONE:
        return f"the stroke faded to {share} of its ink"
    return f"the stroke was washed out ({share} of its ink left)"


def mistake_outcome(
    lane: ImageLane, request: ImageRaceRequest, found: tuple[int, float] | None, recovery: Recovery | None
) -> str:
    """What the forced stroke did to this run's lane (which digit it ends as, how much of the stroke's ink is left),
    then how often that lane's model ends as the digit asked for over the committed measurement: one run is one
    draw, and the sentence says so rather than let one draw stand for the model."""
    title, digit = lane_title(lane.name), request.digit
    left = stroke_left(lane)
    if lane.name == DIFFUSION:
        at = mistake_step(request.steps, request.mistake_at)
        when = f"got the stroke after step {at} of {request.steps} ({request.mistake_at})"
    else:
        when = "painted the stroke when its raster reached it"
    fate = stroke_fate(left, lane.name == AUTOREGRESSIVE)
    if found is None:
        run = f"{title} {when}; {fate}. No classifier is loaded, so nothing says which digit it is."
    elif found[0] == digit:
        run = f"{title} {when}. It still reads as {_article(digit)} {digit} ({percent(found[1])}); {fate}."
    else:
        run = (
            f"{title} {when}. It now reads as {_article(found[0])} {found[0]} ({percent(found[1])}), not the {digit} "
            f"asked for; {fate}."
        )
    return f"{run} {committed_rate(lane.name, request, recovery)}"


def committed_rate(name: str, request: ImageRaceRequest, recovery: Recovery | None) -> str:
    """The committed rate for this lane's model at this run's timing, with its interval and the no-stroke rate."""
    if recovery is None:
        return "No committed measurement of how often it does is on this server."
    row = recovery.row(request.mistake_at)
    if row is None:
        return f"The committed measurement has no row for the {request.mistake_at} timing."
    with_stroke = row.ddpm if name == DIFFUSION else row.pixel_ar
    without = recovery.baseline.get("ddpm" if name == DIFFUSION else "pixel_ar")
    where = f"with the stroke at the {request.mistake_at} timing" if name == DIFFUSION else "with the stroke (at any timing)"
    sentence = f"Over {with_stroke.samples} committed samples {where} it ends as the digit asked for in {rate_text(with_stroke)}"
    if without is not None:
        sentence += f", against {percent(without.rate)} without the stroke"
    if name == DIFFUSION and (request.steps, request.guidance) != (recovery.steps, recovery.guidance):
        measured = f"{recovery.steps} steps, guidance {recovery.guidance:g}"
        sentence += f" (measured at {measured}; this run: {request.steps} steps, guidance {request.guidance:g})"
    return sentence + "."


def rate_text(outcome: Outcome) -> str:
    """'35% (27-45%, 95% interval)': the rate and its Wilson interval, as the page's table prints them."""
    return f"{percent(outcome.rate)} ({interval_text(outcome)}, 95% interval)"


def interval_text(outcome: Outcome) -> str:
    return f"{outcome.low * 100:.0f}-{outcome.high * 100:.0f}%"


def image_race_verdict(race: ImageRaceFrame, digit: int) -> str:
    """Both counts, measured, in one line: passes and, separately, what they cost in time here; then both lanes'
    quality on this run, so the speed never stands without it."""
    by_name = {lane.name: lane for lane in race.lanes}
    diffusion, ar = by_name.get(DIFFUSION), by_name.get(AUTOREGRESSIVE)
    if diffusion is None or ar is None or not diffusion.passes or not diffusion.wall_ms or not ar.wall_ms:
        return ""
    passes = ar.passes / diffusion.passes
    time = ar.wall_ms / diffusion.wall_ms
    if passes >= 1:
        by_passes = f"Diffusion used {passes:.1f}x fewer forward passes"
    else:
        by_passes = f"Diffusion used {1 / passes:.1f}x more forward passes"
    by_time = (
        f"and finished {time:.1f}x sooner in wall time on this server"
        if time >= 1
        else f"but took {1 / time:.1f}x as long in wall time on this server"
    )
    return f"{by_passes} {by_time}. {race_quality(diffusion, ar, digit)}"


def race_quality(diffusion: ImageLane, ar: ImageLane, digit: int) -> str:
    """What the classifier reads in each lane's final image on this run, and whether it is the digit asked for."""
    parts: list[str] = []
    for lane, whose in ((diffusion, "the DDPM's image"), (ar, "the PixelCNN's")):
        found = verdict(lane.digit_probabilities)
        if found is None:
            return "No digit classifier is loaded, so this run measures no quality to set beside the speed."
        asked = "the digit asked for" if found[0] == digit else f"not the {digit} asked for"
        parts.append(f"{whose} as {_article(found[0])} {found[0]} ({percent(found[1])}, {asked})")
    return f"Quality, measured on this run: the classifier reads {parts[0]} and {parts[1]}."
