"""When is it decided: the digit classifier's probabilities over a run's steps (issue 12, item 3).

`decided_at` is the step at which a class first got more than half of the classifier's probability; `timeline`
lays the run so far out as a heat strip (one row a digit, one column a step, darker = more probable) with that
step marked. Python computes every coordinate and word here; `templates/stream.html` (`image_timeline`) only
draws them. Torch-free: the probabilities are plain tuples, index = step (a run's frames come one a step, from 0).

The strip stays small whatever the run's length: at most `MAX_COLUMNS` columns (a 1000-step run samples every
11th step), the probabilities quantised to `LEVELS`, and each row's runs of one level merged into one rectangle
of one path per level, in a nested viewBox whose units are columns and rows (integers, a few bytes each).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

THRESHOLD = 0.5  # "decided": the class has more than this
MAX_COLUMNS = 100
# Lower bounds of the shaded levels (below the first: not drawn). 0.5 is a bound, so the strip turns to
# level 3 exactly where the marker says the class passed 50%.
LEVELS = (0.05, 0.25, 0.5, 0.75)
LEVEL_LABELS = ("5-25%", "25-50%", "50-75%", "75% and more")

# The SVG's viewBox (it scales to its box; static/theater.css gives its box the same aspect ratio).
WIDTH, HEIGHT = 300, 150
PLOT_LEFT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM = 18, 22, 294, 132
ROW = (PLOT_BOTTOM - PLOT_TOP) / 10

Probabilities = Sequence[float]


def leading(probabilities: Probabilities) -> int:
    """The most probable class; a tie goes to the lowest digit (as numpy's argmax, and the meter, do)."""
    best = 0
    for digit, p in enumerate(probabilities):
        if p > probabilities[best]:
            best = digit
    return best


def decided_at(probabilities_by_step: Sequence[Probabilities], final: int) -> int | None:
    """The first step at which class `final` had more than 50%, even if it dropped back below later; None if
    it never did (exactly 50% does not count)."""
    for step, probabilities in enumerate(probabilities_by_step):
        if final < len(probabilities) and probabilities[final] > THRESHOLD:
            return step
    return None


def level(p: float) -> int:
    """0 (under 5%: not drawn) .. len(LEVELS)."""
    return sum(1 for bound in LEVELS if p >= bound)


def columns_for(total: int) -> tuple[int, int]:
    """(steps a column, columns) for a run of `total` steps, i.e. total + 1 frames."""
    frames = max(total, 0) + 1
    per = math.ceil(frames / MAX_COLUMNS)
    return per, math.ceil(frames / per)


@dataclass(frozen=True, slots=True)
class Timeline:
    width: int
    height: int
    plot_left: float
    plot_top: float
    plot_width: float
    plot_height: float
    columns: int  # the nested viewBox's width: the whole run's columns (the strip grows into it)
    shades: tuple[tuple[str, str], ...]  # (CSS class "l1".."l4", path in column/row units)
    labels: tuple[tuple[int, float, bool], ...]  # (digit, y, is the marked class)
    row: float  # a row's height, outer units
    mark_y: float  # the marked class's row, outer units
    marker_x: float | None  # the decided step, outer units (None: not passed 50% yet)
    now_x: float  # the right edge of the strip so far
    step: int
    total: int
    digit: int  # the marked class: the leading one while the run streams, the final one when it is done
    decided: int | None
    headline: str  # the line drawn above the strip
    summary: str  # the text alternative (the SVG's aria-label)


def _shades(history: Sequence[Probabilities], per: int) -> tuple[tuple[str, str], ...]:
    steps = len(history)
    used = math.ceil(steps / per)
    # a column shows the last step it covers that has arrived
    samples = [history[min((c + 1) * per, steps) - 1] for c in range(used)]
    paths: dict[int, list[str]] = {}
    for digit in range(10):
        levels = [level(sample[digit]) if digit < len(sample) else 0 for sample in samples]
        start = 0
        for c in range(1, used + 1):
            if c < used and levels[c] == levels[start]:
                continue
            if levels[start]:
                n = c - start
                paths.setdefault(levels[start], []).append(f"M{start} {digit}h{n}v1h-{n}z")
            start = c
    return tuple((f"l{k}", "".join(paths[k])) for k in sorted(paths))


def timeline(history: Sequence[Probabilities], total: int, final: int | None = None) -> Timeline:
    """The strip for the steps so far (`history[s]`: the probabilities at step s). `final`: the run's final
    class, once known; until then the mark follows the class leading at the latest step."""
    step = len(history) - 1
    digit = final if final is not None else leading(history[-1]) if history else 0
    decided = decided_at(history, digit)
    per, columns = columns_for(total)
    plot_w = PLOT_RIGHT - PLOT_LEFT
    col_w = plot_w / columns

    def x(s: int) -> float:  # the middle of step s's column
        return round(PLOT_LEFT + (s / per + 0.5 / per) * col_w, 1)

    who = f"final digit {digit}" if final is not None else f"leading digit {digit}"
    now = f" ({history[-1][digit]:.0%} now)" if history and final is None and digit < len(history[-1]) else ""
    if decided is None:
        headline = f"{digit}: not over 50% yet" if final is None else f"{digit} never over 50%"
        passed = f"has not passed 50% yet{now}" if final is None else "never passed 50%"
    else:
        headline = f"{'leading' if final is None else 'final'} {digit}: over 50% at step {decided}"
        passed = f"first passed 50% at step {decided} of {total}{now}"
    return Timeline(
        width=WIDTH,
        height=HEIGHT,
        plot_left=PLOT_LEFT,
        plot_top=PLOT_TOP,
        plot_width=plot_w,
        plot_height=PLOT_BOTTOM - PLOT_TOP,
        columns=columns,
        shades=_shades(history, per),
        labels=tuple((d, round(PLOT_TOP + (d + 0.5) * ROW, 1), d == digit) for d in range(10)),
        row=round(ROW, 2),
        mark_y=round(PLOT_TOP + digit * ROW, 1),
        marker_x=x(decided) if decided is not None else None,
        now_x=round(PLOT_LEFT + math.ceil(len(history) / per) * col_w, 1),
        step=step,
        total=total,
        digit=digit,
        decided=decided,
        headline=headline,
        summary=f"Classifier on x0 over steps 0 to {step} of {total}, one row a digit, darker = more probable: "
        f"the {who} {passed}.",
    )


def decided_sentence(history: Sequence[Probabilities], final: int, total: int) -> tuple[int | None, str, str]:
    """(decided_at, the done notice's clause, the done summary's sentence) for the run's final class."""
    step = decided_at(history, final)
    if step is None:
        best = max((p[final] for p in history if final < len(p)), default=0.0)
        return (
            None,
            f"the classifier never gave the final digit {final} more than 50%",
            f"Never decided: the classifier never gave the final digit {final} more than 50% "
            f"(at most {best:.0%}) in {total} steps.",
        )
    return (
        step,
        f"decided at step {step} of {total}",
        f"Decided at step {step} of {total}: the classifier first gave the final digit {final} more than 50% at step {step}.",
    )
