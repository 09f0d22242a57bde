"""The decision map of a finished text run: position (x) against forward pass (y), one mark per decision.

An autoregressive run draws a staircase, a diffusion run a scatter, or blocks with semi-autoregressive
decoding. Remasked tokens (ReMDM) show where they were sent back. Python computes every coordinate and
word here; `templates/stream.html` (`decision_map`) only draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.text.decisions import COMMIT, Decision, DecisionLog

MAP_WIDTH = 640  # viewBox units; the SVG scales to its box
# The axes are labelled in HTML around the SVG (templates/stream.html), so their type keeps its size when the
# map scales down to a phone; the SVG keeps a thin margin only.
PAD_LEFT, PAD_TOP, PAD_RIGHT, PAD_BOTTOM = 4, 4, 4, 4
MAX_PLOT_HEIGHT = 360  # a 64-pass staircase stays on one projector screen


@dataclass(frozen=True, slots=True)
class Cell:
    x: float
    y: float
    w: float
    h: float
    kind: str  # "commit" (kept to the end), "undone" (later sent back), "remask" (sent back here)


@dataclass(frozen=True, slots=True)
class DecisionMapView:
    label: str  # which run or lane
    width: int  # viewBox
    height: int
    cells: tuple[Cell, ...]
    columns: int
    rows: int  # passes on the y axis (a race gives both lanes the same scale)
    passes: int  # passes this run took
    plot_left: float
    plot_top: float
    plot_right: float
    plot_bottom: float
    row_height: float
    now_y: float  # the line under the last pass (the player moves it while scrubbing)
    summary: str  # one sentence: the text alternative's gist (also the SVG's aria-label)
    steps: tuple[tuple[int, str], ...]  # (pass, "positions 1, 5, 9") for the text alternative
    in_order_share: float
    remasks: int


def _positions(columns: list[int]) -> str:
    return ", ".join(str(c + 1) for c in sorted(columns))


def describe(log: DecisionLog, passes: int) -> str:
    commits = sum(1 for e in log.events if e.kind == COMMIT)
    remasks = len(log.events) - commits
    share = log.in_order_share()
    per_pass = log.width / passes if passes else 0.0
    if share >= 0.999 and per_pass <= 1:
        shape = "left to right, one per pass"
    else:
        shape = f"{share:.0%} of commits took the leftmost blank"
    text = f"{log.width} tokens over {passes} forward passes ({per_pass:.1f} per pass); {shape}"
    if remasks:
        text += f"; {remasks} sent back to blank and decided again"
    return text


def decision_map(log: DecisionLog, label: str, rows: int | None = None) -> DecisionMapView:
    """`rows`: the number of passes the y axis spans (default: this run's); give the lanes of a race the
    same value so their maps share one scale."""
    passes = log.total
    rows = max(rows or passes, passes, 1)
    columns = max(log.width, 1)
    plot_w = MAP_WIDTH - PAD_LEFT - PAD_RIGHT
    cell_w = plot_w / columns
    row_h = min(cell_w, MAX_PLOT_HEIGHT / rows)
    undone = {(e.column, e.step) for e in _undone_commits(log)}
    cells = []
    for event in log.events:
        kind = "remask" if event.kind != COMMIT else ("undone" if (event.column, event.step) in undone else "commit")
        cells.append(
            Cell(
                round(PAD_LEFT + event.column * cell_w, 2),
                round(PAD_TOP + (event.step - 1) * row_h, 2),
                round(cell_w, 2),
                round(row_h, 2),
                kind,
            )
        )
    plot_bottom = PAD_TOP + rows * row_h
    steps = tuple((step, "positions " + _positions(cols)) for step, cols in sorted(log.commits_per_step().items()))
    return DecisionMapView(
        label=label,
        width=MAP_WIDTH,
        height=round(plot_bottom + PAD_BOTTOM),
        cells=tuple(cells),
        columns=log.width,
        rows=rows,
        passes=passes,
        plot_left=PAD_LEFT,
        plot_top=PAD_TOP,
        plot_right=round(PAD_LEFT + plot_w, 2),
        plot_bottom=round(plot_bottom, 2),
        row_height=round(row_h, 4),
        now_y=round(PAD_TOP + passes * row_h, 2),
        summary=f"{label}: {describe(log, passes)}",
        steps=steps,
        in_order_share=round(log.in_order_share(), 4),
        remasks=sum(1 for e in log.events if e.kind != COMMIT),
    )


def _undone_commits(log: DecisionLog) -> list[Decision]:
    """Commits that a later remask sent back (drawn hollow)."""
    last: dict[int, Decision] = {}
    undone: list[Decision] = []
    for event in log.events:
        if event.kind == COMMIT:
            last[event.column] = event
        elif event.column in last:
            undone.append(last.pop(event.column))
    return undone
