"""A loss-against-epochs plot as SVG coordinates (like `app.render.image.schedule_plot`); the template draws it.

Epochs on a log axis (the runs span 0.7 to 75 epochs), loss in nats/token on a linear one; per curve, held-out
loss solid and training loss dashed. It plots the curves and marks it is given and knows nothing else of them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

PLOT_W, PLOT_H = 720, 480
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 92, 30, 22, 74
LOG_SERIES = (1.0, 2.0, 5.0)


class LossPoint(Protocol):
    """What the plot reads of a logged point (`app.why.data.CurvePoint` is one); read-only, so frozen ones fit."""

    @property
    def epochs(self) -> float: ...

    @property
    def train_loss(self) -> float: ...

    @property
    def heldout_loss(self) -> float: ...


Curves = Mapping[str, Sequence[LossPoint]]  # name -> points in order; the order gives each curve its colour


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks from the largest one <= lo to the smallest one >= hi (lo, hi > 0)."""
    ticks: list[float] = []
    for exponent in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        ticks += [round(m * 10.0**exponent, 12) for m in LOG_SERIES]
    below = [t for t in ticks if t <= lo * (1 + 1e-12)]
    above = [t for t in ticks if t >= hi * (1 - 1e-12)]
    first, last = max(below), min(above)
    return [t for t in ticks if first <= t <= last]


def linear_ticks(lo: float, hi: float, max_intervals: int = 8) -> list[float]:
    """Evenly spaced round ticks (step 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max_intervals
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw * (1 - 1e-9))
    start = math.floor(lo / step + 1e-9) * step
    count = math.ceil((hi - start) / step - 1e-9)
    return [round(start + i * step, 10) for i in range(count + 1)]


@dataclass(frozen=True)
class Tick:
    value: float
    pos: float
    label: str


@dataclass(frozen=True)
class Line:
    curve: str
    index: int  # colour: class c-<index>
    kind: str  # "heldout" (solid) or "train" (dashed)
    points: tuple[tuple[float, float], ...]
    d: str
    dotted: bool = False  # draw a dot at each point (a curve of few, separately measured points)


@dataclass(frozen=True)
class Mark:
    """A point to point out: `label` is the number shown on its badge; `parts` its words, which the plot
    passes through untouched (the caller's strings and numbers, for its template to render)."""

    epochs: float
    loss: float
    label: str
    parts: tuple[object, ...]


@dataclass(frozen=True)
class PlacedMark:
    x: float
    y: float
    badge_x: float
    badge_y: float
    label: str
    parts: tuple[object, ...]


@dataclass(frozen=True)
class PlotView:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    lines: list[Line]
    marks: list[PlacedMark]
    legend: list[tuple[str, int]]
    x_label: str = "epochs over the same training data (log scale)"
    y_label: str = "loss, nats/token"
    aria_label: str = ""
    dash: str = "11 7"


@dataclass(frozen=True)
class Scale:
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    left: float = MARGIN_LEFT
    right: float = PLOT_W - MARGIN_RIGHT
    top: float = MARGIN_TOP
    bottom: float = PLOT_H - MARGIN_BOTTOM

    def x(self, epochs: float) -> float:
        share = (math.log10(epochs) - math.log10(self.x_lo)) / (math.log10(self.x_hi) - math.log10(self.x_lo))
        return round(self.left + share * (self.right - self.left), 1)

    def y(self, loss: float) -> float:
        share = (loss - self.y_lo) / (self.y_hi - self.y_lo)
        return round(self.bottom - share * (self.bottom - self.top), 1)


def scale_for(curves: Curves) -> tuple[Scale, list[float], list[float]]:
    points = [p for ps in curves.values() for p in ps]
    epochs = [p.epochs for p in points]
    losses = [v for p in points for v in (p.train_loss, p.heldout_loss)]
    x_ticks = log_ticks(min(epochs), max(epochs)) if min(epochs) < max(epochs) else log_ticks(min(epochs) / 2, max(epochs) * 2)
    y_ticks = linear_ticks(min(losses), max(losses))
    return Scale(x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]), x_ticks, y_ticks


def _d(points: Sequence[tuple[float, float]]) -> str:
    return "M" + " L".join(f"{x:g},{y:g}" for x, y in points)


BADGE_OFFSETS = (-40, 40, -80, 80, -120, 120)  # above the point first, then below, then further out
BADGE_CLEARANCE = 38  # centre to centre: two badges (r=17) and their outlines do not touch


def badge_height(x: float, y: float, scale: Scale, taken: Sequence[tuple[float, float]]) -> float:
    """Where a mark's badge goes: the first offset inside the plot that clears the badges already placed
    (marks at nearby points, e.g. two runs ending close together); above the point if none does."""
    inside = [y + o for o in BADGE_OFFSETS if scale.top + 16 <= y + o <= scale.bottom - 16] or [y - 40]
    clear = [b for b in inside if all(math.hypot(x - tx, b - ty) >= BADGE_CLEARANCE for tx, ty in taken)]
    return (clear or inside)[0]


def plot_view(curves: Curves, marks: Sequence[Mark] = (), aria_label: str = "", dotted: Collection[str] = ()) -> PlotView:
    """SVG coordinates: one solid held-out line and one dashed training line per curve, axes, ticks, marks.
    The held-out lines of the curves named in `dotted` also get a dot at each point."""
    scale, x_values, y_values = scale_for(curves)
    lines: list[Line] = []
    for index, (name, points) in enumerate(curves.items()):
        for kind in ("heldout", "train"):
            xy = tuple((scale.x(p.epochs), scale.y(p.heldout_loss if kind == "heldout" else p.train_loss)) for p in points)
            lines.append(Line(name, index, kind, xy, _d(xy), dotted=kind == "heldout" and name in dotted))
    placed: list[PlacedMark] = []
    for mark in marks:
        x, y = scale.x(mark.epochs), scale.y(mark.loss)
        badge_y = badge_height(x, y, scale, [(m.badge_x, m.badge_y) for m in placed])
        placed.append(PlacedMark(x, y, x, badge_y, mark.label, mark.parts))
    return PlotView(
        width=PLOT_W,
        height=PLOT_H,
        left=scale.left,
        right=scale.right,
        top=scale.top,
        bottom=scale.bottom,
        x_ticks=[Tick(v, scale.x(v), f"{v:g}") for v in x_values],
        y_ticks=[Tick(v, scale.y(v), f"{v:g}") for v in y_values],
        lines=lines,
        marks=placed,
        legend=[(name, index) for index, name in enumerate(curves)],
        aria_label=aria_label,
    )
