"""When is it decided (app/render/decided.py): the first step over 50%, and the timeline's strip, torch-free."""

from __future__ import annotations

import re

from app.render.decided import (
    MAX_COLUMNS,
    columns_for,
    decided_at,
    decided_sentence,
    leading,
    level,
    timeline,
)


def probs(**by_digit: float) -> tuple[float, ...]:
    """Ten probabilities: the named digits (d0=..., d7=...) as given, the rest share what is left."""
    given = {int(k[1:]): v for k, v in by_digit.items()}
    rest = (1 - sum(given.values())) / (10 - len(given))
    return tuple(given.get(d, rest) for d in range(10))


RUN = [probs(d7=0.1), probs(d7=0.3), probs(d7=0.45, d1=0.4), probs(d7=0.6), probs(d7=0.9)]


def test_the_first_step_over_half() -> None:
    assert decided_at(RUN, 7) == 3
    assert decided_at(RUN, 1) is None  # 40% at most
    assert decided_at([], 7) is None
    assert decided_at([(), probs(d2=0.8)], 2) == 1  # a step without a classifier reading never decides


def test_never_passing_half() -> None:
    run = [probs(d3=0.2), probs(d3=0.45), probs(d3=0.49)]
    assert decided_at(run, 3) is None
    step, clause, sentence = decided_sentence(run, 3, 2)
    assert step is None and "never" in clause and sentence.startswith("Never decided:") and "at most 49%" in sentence


def test_passing_then_dropping_back_counts_the_first_pass() -> None:
    run = [probs(d4=0.2), probs(d4=0.7), probs(d4=0.3, d9=0.6), probs(d4=0.8)]
    assert decided_at(run, 4) == 1
    assert decided_at(run, 9) == 2
    assert decided_sentence(run, 4, 3) == (
        1,
        "decided at step 1 of 3",
        "Decided at step 1 of 3: the classifier first gave the final digit 4 more than 50% at step 1.",
    )


def test_exactly_half_and_ties() -> None:
    half = [0.0] * 10
    half[2] = half[5] = 0.5
    assert decided_at([tuple(half)], 2) is None and decided_at([tuple(half)], 5) is None  # more than 50% only
    assert leading(half) == 2  # a tie goes to the lowest digit, as the meter's argmax
    assert leading(probs(d8=0.3, d6=0.3)) == 6
    assert leading([0.1] * 10) == 0


def test_levels_and_columns() -> None:
    assert [level(p) for p in (0.0, 0.049, 0.05, 0.25, 0.5, 0.5001, 0.75, 1.0)] == [0, 0, 1, 2, 3, 3, 4, 4]
    assert columns_for(50) == (1, 51)  # a column a step
    per, columns = columns_for(1000)
    assert per == 11 and columns == 91 and columns <= MAX_COLUMNS
    assert columns_for(0) == (1, 1)


def test_timeline_marks_the_leading_digit_while_streaming() -> None:
    strip = timeline(RUN[:3], total=10)
    assert strip.digit == 7 and strip.decided is None and strip.marker_x is None
    assert strip.headline == "7: not over 50% yet"
    assert "leading digit 7 has not passed 50% yet (45% now)" in strip.summary
    later = timeline(RUN, total=10)
    assert later.decided == 3 and later.marker_x is not None and later.headline == "leading 7: over 50% at step 3"
    assert "over steps 0 to 4 of 10" in later.summary and "first passed 50% at step 3 of 10" in later.summary
    assert [label[2] for label in later.labels].count(True) == 1 and later.labels[7][2]
    assert later.now_x > strip.now_x  # the strip grows to the right


def test_timeline_with_the_final_digit() -> None:
    strip = timeline(RUN, total=4, final=1)
    assert strip.digit == 1 and strip.decided is None and strip.headline == "1 never over 50%"
    assert "final digit 1 never passed 50%" in strip.summary


def test_shades_merge_runs_of_one_level_into_one_rectangle() -> None:
    strip = timeline(RUN, total=4)
    shades = dict(strip.shades)
    # digit 7: 10% (l1), 30% (l2), 45% (l2), 60% (l3), 90% (l4): four rectangles, the two l2 steps merged
    assert "M0 7h1v1h-1z" in shades["l1"] and "M1 7h2v1h-2z" in shades["l2"]
    assert "M3 7h1v1h-1z" in shades["l3"] and "M4 7h1v1h-1z" in shades["l4"]
    assert "M2 1h1v1h-1z" in shades["l2"]  # digit 1 at 40% once
    for _, path in strip.shades:
        assert re.fullmatch(r"(M\d+ \d+h\d+v1h-\d+z)+", path)


def test_a_long_run_stays_small() -> None:
    """1000 steps, a classifier flickering between two digits at every step: the worst case stays bounded."""
    flicker = [probs(d3=0.6, d5=0.2) if s % 2 else probs(d5=0.6, d3=0.2) for s in range(1001)]
    strip = timeline(flicker, total=1000)
    assert strip.columns == 91
    rectangles = sum(path.count("M") for _, path in strip.shades)
    assert rectangles <= 10 * strip.columns
    assert sum(len(path) for _, path in strip.shades) < 4000
