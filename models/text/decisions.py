"""When each token was decided: a run's commits and remasks, read off its frames.

The decision map (position x step) is drawn from this log: an autoregressive run is a staircase (one
position per pass, left to right), a diffusion run a scatter or, with semi-autoregressive blocks, blocks.
The same log lists every change of mind (a token sent back to blank and decided again).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.frames import FIXED, TextFrame

COMMIT = "commit"
REMASK = "remask"


@dataclass(frozen=True)
class Decision:
    column: int  # index among the generated positions (fixed text is not a column)
    step: int  # the step (forward pass) it happened in
    kind: str  # COMMIT or REMASK
    text: str  # the token committed, or the token sent back to blank


@dataclass(frozen=True)
class Change:
    """A token the model went back on: committed as `before`, sent back at `remasked_at`, decided again as
    `after` at `redecided_at` (None: the run ended first). `before` may equal `after`."""

    column: int
    before: str
    after: str | None
    committed_at: int
    remasked_at: int
    redecided_at: int | None


class DecisionLog:
    """Feed it a run's frames in order (`record`); read the events, changes and summary numbers."""

    def __init__(self) -> None:
        self.columns: dict[int, int] = {}  # canvas position -> column
        self.events: list[Decision] = []
        self.total = 0
        self._text: dict[int, str] = {}  # column -> token committed there now

    @property
    def width(self) -> int:
        return len(self.columns)

    def record(self, frame: TextFrame) -> None:
        if not self.columns:
            generated = [p for p, token in enumerate(frame.tokens) if token.state != FIXED]
            self.columns = {p: column for column, p in enumerate(generated)}
        self.total = frame.total
        # Logged in the order samplers act: a step commits some blanks, then may send other tokens back.
        for position in sorted(frame.committed):
            column = self.columns[position]
            text = frame.tokens[position].text
            self._text[column] = text
            self.events.append(Decision(column, frame.step, COMMIT, text))
        for position in sorted(frame.remasked):
            column = self.columns[position]
            self.events.append(Decision(column, frame.step, REMASK, self._text.pop(column, "")))

    def changes(self) -> list[Change]:
        out: list[Change] = []
        last_commit: dict[int, Decision] = {}
        pending: dict[int, tuple[Decision, Decision]] = {}  # column -> (commit, remask) awaiting a new commit
        for event in self.events:
            if event.kind == COMMIT:
                if event.column in pending:
                    commit, remask = pending.pop(event.column)
                    out.append(Change(event.column, commit.text, event.text, commit.step, remask.step, event.step))
                last_commit[event.column] = event
            elif event.column in last_commit:
                pending[event.column] = (last_commit.pop(event.column), event)
        out += [Change(c, commit.text, None, commit.step, remask.step, None) for c, (commit, remask) in pending.items()]
        return sorted(out, key=lambda change: (change.remasked_at, change.column))

    def commits_per_step(self) -> dict[int, list[int]]:
        steps: dict[int, list[int]] = {}
        for event in self.events:
            if event.kind == COMMIT:
                steps.setdefault(event.step, []).append(event.column)
        return steps

    def in_order_share(self) -> float:
        """Share of commits that took the leftmost position still blank: 1.0 is strictly left to right."""
        blank = set(range(self.width))
        in_order = commits = 0
        for event in self.events:  # in the order they happened
            if event.kind == REMASK:
                blank.add(event.column)
                continue
            commits += 1
            in_order += bool(blank) and event.column == min(blank)
            blank.discard(event.column)
        return in_order / commits if commits else 0.0
