"""The /why page ("Why diffusion?"): its demos, its facts and its plot, all decided here; the template renders.

Every number the page shows is computed from a committed file at request time (cached per file mtime):
the data-efficiency curves (`docs/data-efficiency.csv`, written by `models.text.curves`) and the twin's
training log (`models/checkpoints/text-ar/training.csv`, for tokens per epoch). Each one travels as a
`Number` that knows its key, raw value, display text and source file, so the page can mark it
(`data-fact`, `data-value`, `data-source`) and a test can check it against the CSV.

The plot is inline SVG built here as coordinates (like `app.render.schedule_plot`): epochs on a log axis
(the runs span 0.7 to 75 epochs), loss in nats/token on a linear one; held-out loss solid, training dashed.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from app.settings import REPO_ROOT

DATA_CSV = REPO_ROOT / "docs" / "data-efficiency.csv"  # the route reads these at request time: tests monkeypatch
AR_LOG_CSV = REPO_ROOT / "models" / "checkpoints" / "text-ar" / "training.csv"

# The live demos (iframes). The remask query is tuned with the text page's run summary.
RACE_DEMO_QUERY = "length=32&steps=8&autoplay=1"
REMASK_DEMO_QUERY = "prompt=Once+upon+a+time&length=32&steps=32&remask=loop&seed=1&autoplay=1"

AR = "autoregressive"
SCRATCH = "diffusion, from scratch"
FROM_AR = re.compile(r"^diffusion, from AR step (\d+)$")  # initialised from the twin's weights at that step
RECENT_EPOCHS = 10.0  # "still improving": held-out change over about the last this many epochs of logging
COLUMNS = ("curve", "step", "epochs", "train_loss", "heldout_loss")


@dataclass(frozen=True)
class Citation:
    authors: str
    year: int
    title: str
    arxiv: str
    claim: str


# What the literature claims (the page contrasts it with what we measured; no number here is ours).
LITERATURE = (
    Citation(
        "Muennighoff et al.", 2023, "Scaling Data-Constrained Language Models", "2305.16264",
        "for autoregressive models, up to about 4 epochs of repeated data is nearly as good as fresh data; "
        "beyond that the returns of more repetition fade",
    ),
    Citation(
        "Prabhudesai et al.", 2025, "Diffusion Beats Autoregressive in Data-Constrained Settings", "2507.15857",
        "masked diffusion models keep benefiting from repeated data far longer, on the order of 100 epochs",
    ),
)


# ---------------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class CurvePoint:
    step: int
    epochs: float
    train_loss: float
    heldout_loss: float


class CurveDataError(ValueError):
    """The curves file is missing columns, has a value that is not a finite number, or has no rows."""


def display_path(path: Path) -> str:
    """A committed file's path as the page cites it: relative to the repository (never a server path)."""
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.name


def read_curves(path: Path) -> dict[str, list[CurvePoint]]:
    """The curves of a data-efficiency CSV (curve,step,epochs,train_loss,heldout_loss), in file order.

    Raises OSError when the file cannot be read and CurveDataError when it is malformed."""
    curves: dict[str, list[CurvePoint]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CurveDataError(f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        try:
            for row in reader:
                name = (row["curve"] or "").strip()
                try:
                    point = CurvePoint(
                        step=int(row["step"]),
                        epochs=float(row["epochs"]),
                        train_loss=float(row["train_loss"]),
                        heldout_loss=float(row["heldout_loss"]),
                    )
                except (TypeError, ValueError) as error:
                    raise CurveDataError(f"line {reader.line_num}: not a number ({error})") from None
                values = (point.epochs, point.train_loss, point.heldout_loss)
                if not name or not all(math.isfinite(v) for v in values) or point.epochs <= 0:
                    raise CurveDataError(f"line {reader.line_num}: needs a curve name, positive epochs, finite losses")
                curves.setdefault(name, []).append(point)
        except csv.Error as error:
            raise CurveDataError(f"line {reader.line_num}: {error}") from None
    if not curves:
        raise CurveDataError("no data rows")
    return curves


def tokens_per_epoch(path: Path) -> float | None:
    """Training tokens per epoch from a training log with tokens_seen and epochs columns (tokens_seen /
    epochs at the row with the most epochs, where the rounding of epochs matters least); None if unreadable."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = [(float(r["epochs"]), float(r["tokens_seen"])) for r in csv.DictReader(f)]
    except (OSError, ValueError, KeyError, TypeError, csv.Error):
        return None
    rows = [(e, t) for e, t in rows if math.isfinite(e) and math.isfinite(t) and e > 0 and t > 0]
    if not rows:
        return None
    epochs, tokens = max(rows)
    return tokens / epochs


# ---------------------------------------------------------------------------------------------------------
# Facts


def overfit_onset(points: Sequence[CurvePoint]) -> CurvePoint | None:
    """The first logged point where training loss is below held-out loss (the train/held-out gap opens)."""
    return next((p for p in points if p.train_loss < p.heldout_loss), None)


def below_spans(points: Sequence[CurvePoint]) -> list[list[CurvePoint]]:
    """Runs of consecutive logged points with training loss below held-out loss."""
    spans: list[list[CurvePoint]] = []
    previous_below = False
    for p in points:
        below = p.train_loss < p.heldout_loss
        if below and previous_below:
            spans[-1].append(p)
        elif below:
            spans.append([p])
        previous_below = below
    return spans


def best_point(points: Sequence[CurvePoint]) -> CurvePoint:
    """The point with the lowest held-out loss (the first such, if tied)."""
    return min(points, key=lambda p: p.heldout_loss)


def recent_start(points: Sequence[CurvePoint], window: float = RECENT_EPOCHS) -> CurvePoint:
    """The latest logged point at least `window` epochs before the last one (the first point if none is)."""
    last = points[-1]
    earlier = [p for p in points if p.epochs <= last.epochs - window]
    return earlier[-1] if earlier else points[0]


def init_step(curve_name: str) -> int | None:
    """The twin's step a diffusion curve was initialised from ("diffusion, from AR step 300" -> 300)."""
    match = FROM_AR.match(curve_name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Number:
    """A number the page shows: `key` names the fact, `raw` is the value (data-value), `text` the display."""

    key: str
    value: float
    text: str
    source: str

    @property
    def raw(self) -> str:
        return f"{self.value:.10g}"


def _loss_text(value: float) -> str:
    return f"{round(value, 4):g}"


def _num(key: str, value: float, source: str, digits: int | None = None) -> Number:
    """digits None: a loss (up to 4 decimals, as logged); else fixed decimals."""
    text = _loss_text(value) if digits is None else f"{value:.{digits}f}"
    return Number(key, value, text, source)


@dataclass(frozen=True)
class ArFacts:
    index: int  # the curve's colour (CSV order)
    last_epochs: Number
    last_train: Number
    last_heldout: Number
    end_gap: Number  # held-out minus training at the last point (positive: training below held-out)
    onset: bool
    onset_epochs: Number | None = None
    onset_train: Number | None = None
    onset_heldout: Number | None = None
    fall_after_onset: Number | None = None  # held-out at the onset minus held-out at the last point
    falling_at_end: bool = False  # held-out lower at the last point than at the one before


@dataclass(frozen=True)
class FromArFacts:
    index: int
    name: str
    last_epochs: Number
    last_train: Number
    last_heldout: Number
    last_is_best: bool
    best_epochs: Number
    best_heldout: Number
    recent_from_epochs: Number
    recent_from_heldout: Number
    recent_span: Number
    recent_fall: Number  # held-out at the start of the window minus at the end (positive: still improving)
    train_above_at_end: bool
    end_gap: Number  # training minus held-out at the last point
    below: list[tuple[Number, Number, Number]]  # (from epochs, to epochs, points) where training < held-out
    init_step: Number | None
    init_epochs: Number | None  # the twin's epochs at that step (not counted on this curve's axis)


@dataclass(frozen=True)
class ScratchFacts:
    index: int
    last_epochs: Number
    last_train: Number
    last_heldout: Number
    train_above_at_end: bool
    recent_from_epochs: Number
    recent_fall: Number


@dataclass(frozen=True)
class Facts:
    source: str
    ar: ArFacts | None
    from_ar: FromArFacts | None
    scratch: ScratchFacts | None
    tokens_per_epoch: Number | None
    tokens_source: str


def ar_facts(points: Sequence[CurvePoint], source: str, index: int = 0) -> ArFacts:
    last, onset = points[-1], overfit_onset(points)
    base = {
        "index": index,
        "last_epochs": _num("ar.last.epochs", last.epochs, source, 2),
        "last_train": _num("ar.last.train_loss", last.train_loss, source),
        "last_heldout": _num("ar.last.heldout_loss", last.heldout_loss, source),
        "end_gap": _num("ar.last.gap", last.heldout_loss - last.train_loss, source),
        "falling_at_end": len(points) > 1 and last.heldout_loss < points[-2].heldout_loss,
    }
    if onset is None:
        return ArFacts(onset=False, **base)
    return ArFacts(
        onset=True,
        onset_epochs=_num("ar.onset.epochs", onset.epochs, source, 2),
        onset_train=_num("ar.onset.train_loss", onset.train_loss, source),
        onset_heldout=_num("ar.onset.heldout_loss", onset.heldout_loss, source),
        fall_after_onset=_num("ar.onset.fall_to_last", onset.heldout_loss - last.heldout_loss, source),
        **base,
    )


def from_ar_facts(
    name: str, points: Sequence[CurvePoint], ar: Sequence[CurvePoint] | None, source: str, index: int = 0
) -> FromArFacts:
    last, best, start = points[-1], best_point(points), recent_start(points)
    step = init_step(name)
    at_step = next((p for p in ar or () if p.step == step), None)
    below = [
        (
            _num(f"from_ar.below.{i}.from_epochs", span[0].epochs, source, 1),
            _num(f"from_ar.below.{i}.to_epochs", span[-1].epochs, source, 1),
            _num(f"from_ar.below.{i}.points", len(span), source, 0),
        )
        for i, span in enumerate(below_spans(points))
    ]
    return FromArFacts(
        index=index,
        name=name,
        last_epochs=_num("from_ar.last.epochs", last.epochs, source, 1),
        last_train=_num("from_ar.last.train_loss", last.train_loss, source),
        last_heldout=_num("from_ar.last.heldout_loss", last.heldout_loss, source),
        last_is_best=best is last or best.heldout_loss == last.heldout_loss,
        best_epochs=_num("from_ar.best.epochs", best.epochs, source, 1),
        best_heldout=_num("from_ar.best.heldout_loss", best.heldout_loss, source),
        recent_from_epochs=_num("from_ar.recent.from_epochs", start.epochs, source, 1),
        recent_from_heldout=_num("from_ar.recent.from_heldout_loss", start.heldout_loss, source),
        recent_span=_num("from_ar.recent.span_epochs", last.epochs - start.epochs, source, 1),
        recent_fall=_num("from_ar.recent.fall", start.heldout_loss - last.heldout_loss, source),
        train_above_at_end=last.train_loss > last.heldout_loss,
        end_gap=_num("from_ar.last.gap", last.train_loss - last.heldout_loss, source),
        below=below,
        init_step=_num("from_ar.init.step", step, source, 0) if step is not None else None,
        init_epochs=_num("from_ar.init.epochs", at_step.epochs, source, 2) if at_step else None,
    )


def scratch_facts(points: Sequence[CurvePoint], source: str, index: int = 0) -> ScratchFacts:
    last, start = points[-1], recent_start(points)
    return ScratchFacts(
        index=index,
        last_epochs=_num("scratch.last.epochs", last.epochs, source, 1),
        last_train=_num("scratch.last.train_loss", last.train_loss, source),
        last_heldout=_num("scratch.last.heldout_loss", last.heldout_loss, source),
        train_above_at_end=last.train_loss > last.heldout_loss,
        recent_from_epochs=_num("scratch.recent.from_epochs", start.epochs, source, 1),
        recent_fall=_num("scratch.recent.fall", start.heldout_loss - last.heldout_loss, source),
    )


def from_ar_curve(curves: dict[str, list[CurvePoint]]) -> str | None:
    return next((name for name in curves if FROM_AR.match(name)), None)


def why_facts(
    curves: dict[str, list[CurvePoint]], source: str, tokens: float | None = None, tokens_source: str = ""
) -> Facts:
    """The numbers the page states, each a `Number` with its source."""
    ar = curves.get(AR)
    from_ar = from_ar_curve(curves)
    index = {name: i for i, name in enumerate(curves)}  # colours follow CSV order, as in the plot
    return Facts(
        source=source,
        ar=ar_facts(ar, source, index[AR]) if ar else None,
        from_ar=from_ar_facts(from_ar, curves[from_ar], ar, source, index[from_ar]) if from_ar else None,
        scratch=scratch_facts(curves[SCRATCH], source, index[SCRATCH]) if curves.get(SCRATCH) else None,
        tokens_per_epoch=(
            Number("tokens_per_epoch", tokens, f"{tokens / 1000:.0f}k", tokens_source) if tokens else None
        ),
        tokens_source=tokens_source,
    )


# ---------------------------------------------------------------------------------------------------------
# Plot geometry

PLOT_W, PLOT_H = 720, 480
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 92, 30, 22, 74
LOG_SERIES = (1.0, 2.0, 5.0)


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


@dataclass(frozen=True)
class Mark:
    """A point to point out: `label` is the number shown on its badge; `parts` its words (str or Number)."""

    epochs: float
    loss: float
    label: str
    parts: tuple[str | Number, ...]


@dataclass(frozen=True)
class PlacedMark:
    x: float
    y: float
    badge_x: float
    badge_y: float
    label: str
    parts: tuple[str | Number, ...]


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


def scale_for(curves: dict[str, list[CurvePoint]]) -> tuple[Scale, list[float], list[float]]:
    points = [p for ps in curves.values() for p in ps]
    epochs = [p.epochs for p in points]
    losses = [v for p in points for v in (p.train_loss, p.heldout_loss)]
    x_ticks = log_ticks(min(epochs), max(epochs)) if min(epochs) < max(epochs) else log_ticks(min(epochs) / 2, max(epochs) * 2)
    y_ticks = linear_ticks(min(losses), max(losses))
    return Scale(x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]), x_ticks, y_ticks


def _d(points: Sequence[tuple[float, float]]) -> str:
    return "M" + " L".join(f"{x:g},{y:g}" for x, y in points)


def plot_view(curves: dict[str, list[CurvePoint]], marks: Sequence[Mark] = (), aria_label: str = "") -> PlotView:
    """SVG coordinates: one solid held-out line and one dashed training line per curve, axes, ticks, marks."""
    scale, x_values, y_values = scale_for(curves)
    lines: list[Line] = []
    for index, (name, points) in enumerate(curves.items()):
        for kind in ("heldout", "train"):
            xy = tuple((scale.x(p.epochs), scale.y(p.heldout_loss if kind == "heldout" else p.train_loss)) for p in points)
            lines.append(Line(name, index, kind, xy, _d(xy)))
    placed = []
    for mark in marks:
        x, y = scale.x(mark.epochs), scale.y(mark.loss)
        badge_y = y - 40 if y - 40 >= scale.top + 16 else y + 40  # above the point when there is room
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


# ---------------------------------------------------------------------------------------------------------
# The page


@dataclass(frozen=True)
class TableRow:
    curve: str
    index: int
    which: str  # "first", "best", "last", or "" in the full listing
    step: Number
    epochs: Number
    train: Number
    heldout: Number


@dataclass(frozen=True)
class WhyView:
    race_query: str = RACE_DEMO_QUERY
    remask_query: str = REMASK_DEMO_QUERY
    literature: tuple[Citation, ...] = LITERATURE
    source: str = ""
    error: str | None = None  # why the plot is unavailable
    plot: PlotView | None = None
    facts: Facts | None = None
    summary: list[TableRow] = field(default_factory=list)
    points: list[TableRow] = field(default_factory=list)


def _row(curve: str, index: int, which: str, p: CurvePoint, source: str, prefix: str) -> TableRow:
    key = f"{prefix}|{curve}|{which or p.step}"
    return TableRow(
        curve, index, which,
        Number(f"{key}|step", p.step, str(p.step), source),
        Number(f"{key}|epochs", p.epochs, f"{p.epochs:g}", source),
        Number(f"{key}|train_loss", p.train_loss, f"{p.train_loss:g}", source),
        Number(f"{key}|heldout_loss", p.heldout_loss, f"{p.heldout_loss:g}", source),
    )


def plot_marks(facts: Facts) -> list[Mark]:
    marks: list[Mark] = []
    ar, from_ar = facts.ar, facts.from_ar
    if ar and ar.onset and ar.onset_epochs and ar.onset_heldout:
        marks.append(Mark(ar.onset_epochs.value, ar.onset_heldout.value, "1",
                          ("autoregressive: training loss drops below held-out at epoch ", ar.onset_epochs)))
    if from_ar:
        trend = "still falling" if from_ar.recent_fall.value > 0 else "no longer falling"
        marks.append(Mark(from_ar.last_epochs.value, from_ar.last_heldout.value, str(len(marks) + 1),
                          (f"{from_ar.name}: held-out ", from_ar.last_heldout, " at epoch ", from_ar.last_epochs,
                           f", {trend}")))
    return marks


def aria_summary(facts: Facts, curves: dict[str, list[CurvePoint]]) -> str:
    parts = [
        f"Line chart of loss in nats per token against epochs (log scale), {len(curves)} curves ("
        + "; ".join(curves) + "), held-out loss solid, training loss dashed."
    ]
    if facts.ar and facts.ar.onset and facts.ar.onset_epochs:
        epochs = facts.ar.onset_epochs.text
        parts.append(f"The autoregressive twin's training loss drops below its held-out loss at epoch {epochs}.")
    if facts.from_ar:
        f = facts.from_ar
        trend = "still falling" if f.recent_fall.value > 0 else "no longer falling"
        parts.append(f"The diffusion model initialised from the twin reaches held-out {f.last_heldout.text} at epoch "
                     f"{f.last_epochs.text}, {trend}.")
    return " ".join(parts)


def build_view(data_csv: Path, ar_log_csv: Path) -> WhyView:
    source = display_path(data_csv)
    try:
        curves = read_curves(data_csv)
    except FileNotFoundError:
        return WhyView(source=source, error=f"{source} was not found")
    except (OSError, ValueError, csv.Error) as error:
        return WhyView(source=source, error=f"{source} could not be read: {error}")
    facts = why_facts(curves, source, tokens_per_epoch(ar_log_csv), display_path(ar_log_csv))
    summary, listing = [], []
    for index, (name, points) in enumerate(curves.items()):
        best = best_point(points)
        for which, p in (("first", points[0]), ("best", best), ("last", points[-1])):
            summary.append(_row(name, index, which, p, source, "summary"))
        listing += [_row(name, index, "", p, source, "points") for p in points]
    return WhyView(
        source=source,
        plot=plot_view(curves, plot_marks(facts), aria_summary(facts, curves)),
        facts=facts,
        summary=summary,
        points=listing,
    )


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


@lru_cache(maxsize=8)
def _cached_view(data_csv: Path, data_mtime: int | None, ar_log_csv: Path, ar_mtime: int | None) -> WhyView:
    return build_view(data_csv, ar_log_csv)


def page_view(data_csv: Path | None = None, ar_log_csv: Path | None = None) -> WhyView:
    """The page's view, rebuilt when either file changes (keyed by path and mtime)."""
    data_csv = data_csv or DATA_CSV
    ar_log_csv = ar_log_csv or AR_LOG_CSV
    return _cached_view(data_csv, _mtime(data_csv), ar_log_csv, _mtime(ar_log_csv))
