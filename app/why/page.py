"""The /why page ("Why diffusion?"): its demos, its facts and its plot, all decided here; the template renders.

The numbers come from `app.why.data` (computed from committed files at request time, cached per file mtime),
the plot's geometry from `app.why.loss_plot`; this module assembles them into the page's view.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from app.settings import REPO_ROOT
from app.why.data import (
    LITERATURE,
    Citation,
    CurvePoint,
    Facts,
    Number,
    best_point,
    display_path,
    read_curves,
    tokens_per_epoch,
    why_facts,
)
from app.why.data_files import data_url
from app.why.loss_plot import Mark, PlotView, plot_view
from models.text import frontier

DATA_CSV = REPO_ROOT / "docs" / "data-efficiency.csv"  # the route reads these at request time: tests monkeypatch
AR_LOG_CSV = REPO_ROOT / "models" / "checkpoints" / "text-ar" / "training.csv"

FRONTIER_CSV = frontier.FRONTIER_CSV

# The live demos (iframes). Without a frontier file: one token a pass (never the setting that flatters).
RACE_DEMO_LENGTH = 32
RACE_DEMO_QUERY = f"length={RACE_DEMO_LENGTH}&steps={RACE_DEMO_LENGTH}&autoplay=1&result=1"
REMASK_DEMO_QUERY = "prompt=Once+upon+a+time&length=64&steps=256&remask=loop&seed=1&autoplay=1&result=1"


def race_demo_query(rows: list[frontier.Row]) -> str:
    """The race demo at the race's default tokens a pass (from the frontier), over a shorter canvas."""
    per_pass = frontier.LENGTH / frontier.default_race_steps(rows)
    steps = max(1, round(RACE_DEMO_LENGTH / per_pass))
    return f"length={RACE_DEMO_LENGTH}&steps={steps}&autoplay=1&result=1"


def remask_demo_row(rows: list[frontier.Row]) -> frontier.Row | None:
    """The remasking setting that reads best by the judge in the frontier (None without remasking rows)."""
    remasks = [r for r in rows if r.remask != "none"]
    return min(remasks, key=lambda r: r.judge_ppl) if remasks else None


def remask_demo_query(row: frontier.Row) -> str:
    """The demo runs the measured setting, at the measured length; its done summary sets the same seed without
    remasking before it (app.render.quality.text_summary)."""
    return (
        f"prompt=Once+upon+a+time&length={frontier.LENGTH}&steps={row.steps}&strategy={row.strategy}"
        f"&block_length={row.block_length}&remask={row.remask}&seed=1&autoplay=1&result=1"
    )


def with_demos(view: WhyView, rows: list[frontier.Row] | None) -> WhyView:
    """The page's demo links chosen from the committed frontier (where remasking measurably helps, the race at its
    default), or the fallbacks above without one."""
    if not rows:
        return view
    row = remask_demo_row(rows)
    return replace(
        view,
        race_query=race_demo_query(rows),
        remask_query=remask_demo_query(row) if row is not None else view.remask_query,
    )


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
    source_url: str | None = None  # the cited file's link, when the server offers it (app/why/data_files.py)
    error: str | None = None  # why the plot is unavailable
    plot: PlotView | None = None
    facts: Facts | None = None
    summary: list[TableRow] = field(default_factory=list)
    points: list[TableRow] = field(default_factory=list)


def _row(curve: str, index: int, which: str, p: CurvePoint, source: str, prefix: str) -> TableRow:
    key = f"{prefix}|{curve}|{which or p.step}"
    return TableRow(
        curve,
        index,
        which,
        Number(f"{key}|step", p.step, str(p.step), source),
        Number(f"{key}|epochs", p.epochs, f"{p.epochs:.1f}", source),
        Number(f"{key}|train_loss", p.train_loss, f"{p.train_loss:.2f}", source),
        Number(f"{key}|heldout_loss", p.heldout_loss, f"{p.heldout_loss:.2f}", source),
    )


def plot_marks(facts: Facts) -> list[Mark]:
    marks: list[Mark] = []
    ar, from_ar = facts.ar, facts.from_ar
    if ar and ar.onset and ar.onset_epochs and ar.onset_heldout:
        marks.append(
            Mark(
                ar.onset_epochs.value,
                ar.onset_heldout.value,
                "1",
                ("autoregressive: training loss drops below held-out at epoch ", ar.onset_epochs),
            )
        )
    for f in from_ar:
        trend = "still falling" if f.recent_fall.value > 0 else "no longer falling"
        marks.append(
            Mark(
                f.last_epochs.value,
                f.last_heldout.value,
                str(len(marks) + 1),
                (f"{f.name}: held-out ", f.last_heldout, " at epoch ", f.last_epochs, f", {trend}"),
            )
        )
    return marks


def aria_summary(facts: Facts, curves: dict[str, list[CurvePoint]]) -> str:
    parts = [
        f"Line chart of loss in nats per token against epochs (log scale), {len(curves)} curves ("
        + "; ".join(curves)
        + "), held-out loss solid, training loss dashed."
    ]
    if facts.ar and facts.ar.onset and facts.ar.onset_epochs:
        epochs = facts.ar.onset_epochs.text
        parts.append(f"The autoregressive twin's training loss drops below its held-out loss at epoch {epochs}.")
    for f in facts.from_ar:
        trend = "still falling" if f.recent_fall.value > 0 else "no longer falling"
        parts.append(
            f"The diffusion model initialised from the twin's step-{f.init_step.text if f.init_step else '?'} weights "
            f"reaches held-out {f.last_heldout.text} at epoch {f.last_epochs.text}, {trend}."
        )
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
        source_url=data_url(data_csv),
        plot=plot_view(
            curves,
            plot_marks(facts),
            aria_summary(facts, curves),
            dotted=[f.name for f in facts.from_ar if f.stage_ends],  # one point per stage: show where they are
        ),
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
