"""The /why page's numbers: read from the committed training-log CSVs and computed at request time.

Two files feed them: the data-efficiency curves (`docs/data-efficiency.csv`, written by `models.text.curves`)
and the twin's training log (`models/checkpoints/text-ar/training.csv`, for tokens per epoch). Each fact
travels as a `Number` that knows its key, raw value, display text and source file, so the page can mark it
(`data-fact`, `data-value`, `data-source`) and a test can check it against the CSV.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from app.settings import REPO_ROOT
from models.text.curves import STAGE_ENDS_SUFFIX

AR = "autoregressive"
SCRATCH = "diffusion, from scratch"
# Initialised from the twin's weights at that step. "(stage ends)": held-out loss measured afterwards on each
# training stage's best weights (`compare_runs --head-log`), one point per stage, not logged during training.
FROM_AR = re.compile(r"^diffusion, from AR step (\d+)(" + re.escape(STAGE_ENDS_SUFFIX) + ")?$")
# Why a curve's training loss dipped below held-out, where the cause is known from how the run was made (the
# README's retrain section); a curve not named here gets the facts without a cause.
KNOWN_DIPS = {
    "diffusion, from AR step 300": "a training stage that replayed the previous stage's batches and masks (same seed)",
}
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
        "Muennighoff et al.",
        2023,
        "Scaling Data-Constrained Language Models",
        "2305.16264",
        "for autoregressive models, up to about 4 epochs of repeated data is nearly as good as fresh data; "
        "beyond that the returns of more repetition fade",
    ),
    Citation(
        "Prabhudesai et al.",
        2025,
        "Diffusion Beats Autoregressive in Data-Constrained Settings",
        "2507.15857",
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


def is_stage_ends(curve_name: str) -> bool:
    match = FROM_AR.match(curve_name)
    return bool(match and match.group(2))


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
    return f"{value:.2f}"  # two decimals: the curves differ by tenths; the raw value stays in data-value


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
    stage_ends: bool = False  # one point per training stage, measured afterwards (see FROM_AR)
    dip_cause: str = ""  # why training dropped below held-out, where known (KNOWN_DIPS)


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
    from_ar: tuple[FromArFacts, ...]  # in CSV order
    scratch: ScratchFacts | None
    tokens_per_epoch: Number | None
    tokens_source: str

    @property
    def furthest_diffusion_epochs(self) -> Number | None:
        """The last epoch of the diffusion curve that trained longest (the page's "reached at most epoch N")."""
        ends = [f.last_epochs for f in self.from_ar] + ([self.scratch.last_epochs] if self.scratch else [])
        return max(ends, key=lambda n: n.value, default=None)


def ar_facts(points: Sequence[CurvePoint], source: str, index: int = 0) -> ArFacts:
    last, onset = points[-1], overfit_onset(points)
    base = ArFacts(
        index=index,
        last_epochs=_num("ar.last.epochs", last.epochs, source, 2),
        last_train=_num("ar.last.train_loss", last.train_loss, source),
        last_heldout=_num("ar.last.heldout_loss", last.heldout_loss, source),
        end_gap=_num("ar.last.gap", last.heldout_loss - last.train_loss, source),
        falling_at_end=len(points) > 1 and last.heldout_loss < points[-2].heldout_loss,
        onset=False,
    )
    if onset is None:
        return base
    return replace(
        base,
        onset=True,
        onset_epochs=_num("ar.onset.epochs", onset.epochs, source, 2),
        onset_train=_num("ar.onset.train_loss", onset.train_loss, source),
        onset_heldout=_num("ar.onset.heldout_loss", onset.heldout_loss, source),
        fall_after_onset=_num("ar.onset.fall_to_last", onset.heldout_loss - last.heldout_loss, source),
    )


def from_ar_facts(
    name: str, points: Sequence[CurvePoint], ar: Sequence[CurvePoint] | None, source: str, index: int = 0
) -> FromArFacts:
    stage_ends = is_stage_ends(name)
    # a point per stage: "recently" is the last stage, not a window of epochs that may reach back several stages
    start = points[-2] if stage_ends and len(points) > 1 else recent_start(points)
    last, best = points[-1], best_point(points)
    step = init_step(name)
    key = f"from_ar.{index}"  # one block of facts per curve, by its place in the CSV
    at_step = next((p for p in ar or () if p.step == step), None)
    below = [
        (
            _num(f"{key}.below.{i}.from_epochs", span[0].epochs, source, 1),
            _num(f"{key}.below.{i}.to_epochs", span[-1].epochs, source, 1),
            _num(f"{key}.below.{i}.points", len(span), source, 0),
        )
        for i, span in enumerate(below_spans(points))
    ]
    return FromArFacts(
        index=index,
        name=name,
        last_epochs=_num(f"{key}.last.epochs", last.epochs, source, 1),
        last_train=_num(f"{key}.last.train_loss", last.train_loss, source),
        last_heldout=_num(f"{key}.last.heldout_loss", last.heldout_loss, source),
        last_is_best=best is last or best.heldout_loss == last.heldout_loss,
        best_epochs=_num(f"{key}.best.epochs", best.epochs, source, 1),
        best_heldout=_num(f"{key}.best.heldout_loss", best.heldout_loss, source),
        recent_from_epochs=_num(f"{key}.recent.from_epochs", start.epochs, source, 1),
        recent_from_heldout=_num(f"{key}.recent.from_heldout_loss", start.heldout_loss, source),
        recent_span=_num(f"{key}.recent.span_epochs", last.epochs - start.epochs, source, 1),
        recent_fall=_num(f"{key}.recent.fall", start.heldout_loss - last.heldout_loss, source),
        train_above_at_end=last.train_loss > last.heldout_loss,
        end_gap=_num(f"{key}.last.gap", last.train_loss - last.heldout_loss, source),
        below=below,
        init_step=_num(f"{key}.init.step", step, source, 0) if step is not None else None,
        init_epochs=_num(f"{key}.init.epochs", at_step.epochs, source, 2) if at_step else None,
        stage_ends=stage_ends,
        dip_cause=KNOWN_DIPS.get(name, ""),
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


def from_ar_curves(curves: dict[str, list[CurvePoint]]) -> list[str]:
    return [name for name in curves if FROM_AR.match(name)]


def why_facts(curves: dict[str, list[CurvePoint]], source: str, tokens: float | None = None, tokens_source: str = "") -> Facts:
    """The numbers the page states, each a `Number` with its source."""
    ar = curves.get(AR)
    index = {name: i for i, name in enumerate(curves)}  # colours follow CSV order, as in the plot
    return Facts(
        source=source,
        ar=ar_facts(ar, source, index[AR]) if ar else None,
        from_ar=tuple(from_ar_facts(name, curves[name], ar, source, index[name]) for name in from_ar_curves(curves)),
        scratch=scratch_facts(curves[SCRATCH], source, index[SCRATCH]) if curves.get(SCRATCH) else None,
        tokens_per_epoch=(Number("tokens_per_epoch", tokens, f"{tokens / 1000:.0f}k", tokens_source) if tokens else None),
        tokens_source=tokens_source,
    )
