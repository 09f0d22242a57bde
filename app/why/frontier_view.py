"""The frontier (`docs/text-frontier.csv`, written by `models.text.frontier`) as a page reads it: a scatter of
tokens per pass against judge perplexity, the table, and the sentences that say where each claim holds.

Read at request time, like the data-efficiency plot: a new measurement changes the pages without a code change.
Everything measured comes from the file; the only numbers written here are the literature's, marked as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from app.why.data_files import data_url
from app.why.loss_plot import Tick
from models.text import frontier
from models.text.frontier import Row

PLOT_W, PLOT_H = 720, 440
LEFT, RIGHT, TOP, BOTTOM = 130, 130, 22, 74
X_TICKS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # tokens per pass, log 2 axis: remasking takes passes that commit nothing
LITERATURE = (
    "Literature, not our measurement: large diffusion language models are reported to commit about 2-3 tokens a "
    "pass at near-equal accuracy with confidence-threshold decoding (Fast-dLLM on LLaDA-8B; Wu et al. 2025, "
    "arXiv:2505.22618; LLaDA: Nie et al. 2025, arXiv:2502.09992)."
)


def kind_of(row: Row) -> str:
    if row.model == "ar":
        return "twin"
    if row.threshold:
        return "threshold"
    if row.remask != "none":
        return f"remask-{row.remask}"
    return "steps"


# The order of the series in the legend; each kind of point is one series, joined in order of tokens per pass.
SERIES_ORDER = ("steps", "threshold", "remask-conf", "remask-loop", "twin")


def series_name(kind: str, rows: Sequence[Row]) -> str:
    """The legend's words for a series, from the settings the file measured (not written by hand)."""
    if kind == "twin":
        return "the autoregressive twin (one token a pass)"
    if kind == "steps":
        steps = sorted(r.steps for r in rows)
        return f"diffusion, {steps[0]} to {steps[-1]} steps (labelled)"
    if kind == "threshold":
        taus = sorted(r.threshold for r in rows)
        return f"confidence-threshold decoding, tau {taus[-1]:g} to {taus[0]:g}"
    times = ", ".join(f"{r.steps // frontier.LENGTH}x" for r in sorted(rows, key=lambda r: r.steps))
    return f"remasking ({rows[0].remask}), {times} the passes"


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    kind: str
    label: str
    row: Row


@dataclass(frozen=True)
class Series:
    kind: str
    name: str
    d: str  # the SVG path through its points, in order of tokens per pass


def series_of(points: Sequence[Point]) -> tuple[Series, ...]:
    out = []
    for kind in sorted({p.kind for p in points}, key=SERIES_ORDER.index):
        mine = sorted((p for p in points if p.kind == kind), key=lambda p: p.x)
        name = series_name(kind, [p.row for p in mine])
        out.append(Series(kind, name, "M" + " L".join(f"{p.x} {p.y}" for p in mine)))
    return tuple(out)


@dataclass(frozen=True)
class FrontierView:
    rows: tuple[Row, ...]
    table: tuple[tuple[Row, tuple[Cell, ...]], ...]
    points: tuple[Point, ...]
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    twin: Row
    default_steps: int
    sentences: tuple[str, ...]
    aria_label: str
    source: str
    source_url: str | None
    width: int = PLOT_W
    height: int = PLOT_H
    left: int = LEFT
    right: int = PLOT_W - RIGHT
    top: int = TOP
    bottom: int = PLOT_H - BOTTOM
    x_label: str = "tokens committed per forward pass (log scale)"
    y_label: str = "judge perplexity (log scale)"
    literature: str = LITERATURE
    length: int = frontier.LENGTH  # tokens a sample


def _x(tokens_per_pass: float) -> float:
    lo, hi = math.log2(X_TICKS[0]), math.log2(X_TICKS[-1])
    share = (math.log2(max(X_TICKS[0], min(X_TICKS[-1], tokens_per_pass))) - lo) / (hi - lo)
    return round(LEFT + share * (PLOT_W - LEFT - RIGHT), 1)


def _y_scale(lo: float, hi: float) -> tuple[list[float], Callable[[float], float]]:
    # whole decades only: the points span several, and 1-2-5 ticks crowd the axis when a phone enlarges its labels
    ticks = [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    top, bottom = math.log10(ticks[-1]), math.log10(ticks[0])

    def y(value: float) -> float:
        share = (math.log10(value) - bottom) / (top - bottom)
        return round(PLOT_H - BOTTOM - share * (PLOT_H - BOTTOM - TOP), 1)

    return ticks, y


def _label(row: Row) -> str:
    kind = kind_of(row)
    if kind == "twin":
        return "twin"
    if kind == "threshold":
        return f"tau {row.threshold:g}"
    if kind.startswith("remask"):
        return f"{row.remask} x{row.steps // frontier.LENGTH}"
    return f"{row.steps} steps"


def sentences(rows: list[Row]) -> tuple[str, ...]:
    """What the file says about each claim, in words (every number from `rows`)."""
    twin, plain = frontier.twin_row(rows), frontier.race_rows(rows)
    default = frontier.default_race_steps(rows)
    chosen = plain[default]
    steps_part = "; ".join(
        f"{r.tokens_per_pass:g} a pass ({s} steps): {r.judge_ppl:.1f}, {r.real_words:.0%} real words"
        for s, r in sorted(plain.items(), reverse=True)
    )
    out = [
        f"Judge perplexity of the diffusion model's text by tokens committed per pass, {frontier.LENGTH} tokens, "
        f"{chosen.samples} samples each: {steps_part}. The twin's: {twin.judge_ppl:.1f}, {twin.real_words:.0%} real words.",
    ]
    within = chosen.judge_ppl <= frontier.WITHIN_TWIN * twin.judge_ppl
    per_pass = f"{chosen.tokens_per_pass:g} token{'s' if chosen.tokens_per_pass != 1 else ''} a pass"
    rule = (
        f"the fewest whose judge perplexity is within {frontier.WITHIN_TWIN:g}x the twin's."
        if within
        else f"no setting is within {frontier.WITHIN_TWIN:g}x the twin's judge perplexity, so the one that reads best."
    )
    out.append(f"So the race's default is {default} steps for {frontier.LENGTH} tokens ({per_pass}): {rule}")
    if chosen.tokens_per_pass <= 1:
        out.append(
            "Why this small model needs about one pass per token: the blanks committed in one pass are drawn "
            "independently of each other, so two neighbours can each be likely alone and wrong together, and a model "
            "this small is rarely sure enough of several blanks at once."
        )
    thresholds = [r for r in rows if r.threshold]
    if thresholds:
        most = max(thresholds, key=lambda r: r.tokens_per_pass)
        out.append(
            f"Confidence-threshold decoding (commit every blank whose draw is at least tau likely) reached at most "
            f"{most.tokens_per_pass:g} tokens a pass (tau {most.threshold:g}, judge perplexity {most.judge_ppl:.1f}, "
            f"distinct word pairs {most.distinct2:.2f} against the twin's {twin.distinct2:.2f}: fluent because it "
            "repeats itself): the model is rarely sure of two blanks at once."
        )
    remasks = [r for r in rows if r.remask != "none"]
    one_a_pass = plain.get(frontier.LENGTH)
    if remasks and one_a_pass is not None:
        parts = [
            f"{r.remask} with {r.steps // frontier.LENGTH}x the passes {r.judge_ppl:.1f}"
            + (" (better)" if r.judge_ppl < one_a_pass.judge_ppl else " (worse)")
            for r in sorted(remasks, key=lambda r: (r.remask, r.steps))
        ]
        helped = [r for r in remasks if r.judge_ppl < one_a_pass.judge_ppl]
        if helped:
            best = min(helped, key=lambda r: r.judge_ppl)
            verdict = (
                f"{len(helped)} of {len(remasks)} remasking settings read better than without it; the best, "
                f"{best.remask} with {best.steps // frontier.LENGTH}x the passes, at {best.judge_ppl:.1f}, but its text "
                f"is less varied (distinct word pairs {best.distinct2:.2f} against {one_a_pass.distinct2:.2f} without)."
            )
        else:
            verdict = "remasking did not help in any measured setting."
        out.append(
            f"Going back to correct (ReMDM remasking), judge perplexity against {one_a_pass.judge_ppl:.1f} without "
            f"it at one token a pass: {'; '.join(parts)}. Here {verdict}"
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Cell:
    column: str
    value: float  # the file's value, kept in data-number
    text: str  # as a reader wants it: percentages, two decimals, thousands separators


# (column, format) for the table, in order: no four-decimal figures on the page; the file keeps them.
TABLE_COLUMNS: tuple[tuple[str, Callable[[float], str]], ...] = (
    ("tokens_per_pass", lambda v: f"{v:.2g}" if v < 1 else f"{v:.2f}".rstrip("0").rstrip(".")),
    ("judge_ppl", lambda v: f"{v:,.1f}"),
    ("real_words", lambda v: f"{v:.1%}"),
    ("distinct2", lambda v: f"{v:.2f}"),
    ("in_order", lambda v: f"{v:.0%}"),
    ("ms_per_sample", lambda v: f"{v:,.0f}"),
)


def table_of(rows: Sequence[Row]) -> tuple[tuple[Row, tuple[Cell, ...]], ...]:
    return tuple(
        (r, tuple(Cell(column, getattr(r, column), text(getattr(r, column))) for column, text in TABLE_COLUMNS)) for r in rows
    )


def compact(value: float) -> str:
    """A tick label short enough for a phone: 1, 10, 100, 1k, 10k, 100k."""
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def build_view(path: Path) -> FrontierView:
    rows = frontier.read_frontier(path)
    ppl = [r.judge_ppl for r in rows]
    ticks, y = _y_scale(min(ppl), max(ppl))
    # the twin last: its square is drawn over any point that shares its place
    points = sorted(
        (Point(_x(r.tokens_per_pass), y(r.judge_ppl), kind_of(r), _label(r), r) for r in rows), key=lambda p: p.kind == "twin"
    )
    x_ticks = tuple(Tick(t, _x(t), f"{t:g}") for t in X_TICKS)
    y_ticks = tuple(Tick(t, y(t), compact(t)) for t in ticks)
    twin = frontier.twin_row(rows)
    aria = "Tokens per pass against judge perplexity: " + "; ".join(
        f"{p.label}, {p.row.tokens_per_pass:g} tokens a pass, perplexity {p.row.judge_ppl:.1f}" for p in points
    )
    return FrontierView(
        rows=tuple(rows),
        table=table_of(rows),
        points=tuple(points),
        series=series_of(points),
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        twin=twin,
        default_steps=frontier.default_race_steps(rows),
        sentences=sentences(rows),
        aria_label=aria,
        source=f"docs/{path.name}",
        source_url=data_url(path),
    )


def page_view(path: Path | None = None) -> FrontierView | None:
    """The view of the committed file (or `path`), built once per version of it; None when there is none."""
    path = path or frontier.FRONTIER_CSV
    return _cached_view(path, path.stat().st_mtime_ns) if path.exists() else None


@lru_cache(maxsize=8)
def _cached_view(path: Path, _mtime_ns: int) -> FrontierView:
    return build_view(path)
