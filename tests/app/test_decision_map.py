"""The decision map's geometry for small known runs: a staircase, blocks, and a remask."""

from __future__ import annotations

import pytest

from app.render.decision_map import MAP_WIDTH, PAD_LEFT, PAD_RIGHT, PAD_TOP, decision_map
from models.frames import BLANK, COMMITTED, FIXED, NEW, REMASKED, TextFrame, TextToken
from models.text.decisions import DecisionLog


def run(steps: list[tuple[tuple[int, ...], tuple[int, ...]]], width: int) -> DecisionLog:
    """A log from (committed, remasked) canvas positions per step; position 0 is a fixed prompt token."""
    state = [BLANK] * width
    log = DecisionLog()
    log.record(
        TextFrame(0, len(steps), (TextToken(FIXED, 0, "Hi", 1.0), *(TextToken(BLANK, None, "", 0.0) for _ in range(width))), 0)
    )
    for step, (committed, remasked) in enumerate(steps, start=1):
        state = [COMMITTED if s == NEW else (BLANK if s == REMASKED else s) for s in state]
        for p in committed:
            state[p - 1] = NEW
        for p in remasked:
            state[p - 1] = REMASKED
        tokens = tuple(
            TextToken(s, None if s in (BLANK, REMASKED) else 7, "" if s in (BLANK, REMASKED) else f" w{i}", 0.5)
            for i, s in enumerate(state)
        )
        log.record(
            TextFrame(step, len(steps), (TextToken(FIXED, 0, "Hi", 1.0), *tokens), step, committed=committed, remasked=remasked)
        )
    return log


def test_an_autoregressive_run_draws_a_staircase() -> None:
    view = decision_map(run([((1,), ()), ((2,), ()), ((3,), ()), ((4,), ())], width=4), "AR")
    cell = (MAP_WIDTH - PAD_LEFT - PAD_RIGHT) / 4
    assert [(c.x, c.y) for c in view.cells] == [
        (round(PAD_LEFT + i * cell, 2), round(PAD_TOP + i * view.row_height, 2)) for i in range(4)
    ]
    assert all(c.kind == "commit" for c in view.cells)
    assert view.in_order_share == 1.0 and view.passes == view.rows == 4
    assert "left to right, one per pass" in view.summary
    assert view.steps == ((1, "positions 1"), (2, "positions 2"), (3, "positions 3"), (4, "positions 4"))


def test_a_diffusion_run_commits_several_per_pass_on_a_shared_scale() -> None:
    log = run([((2, 4), ()), ((1, 3), ())], width=4)
    view = decision_map(log, "diffusion", rows=4)  # raced against a 4-pass lane: the same row height
    staircase = decision_map(run([((1,), ()), ((2,), ()), ((3,), ()), ((4,), ())], width=4), "AR", rows=4)
    assert view.row_height == staircase.row_height and view.rows == 4 and view.passes == 2
    assert [c.y for c in view.cells] == [PAD_TOP] * 2 + [round(PAD_TOP + view.row_height, 2)] * 2
    assert view.now_y == round(PAD_TOP + 2 * view.row_height, 2)  # under its last pass, not the axis end
    assert view.in_order_share == pytest.approx(2 / 4)  # pass 1: 2 no (1 blank), 4 no; pass 2: 1 yes, 3 yes
    assert "4 tokens over 2 forward passes (2.0 per pass); 50% of commits took the leftmost blank" in view.summary


def test_a_remasked_token_is_drawn_hollow_then_marked_where_it_went_back() -> None:
    view = decision_map(run([((1, 2), ()), ((), (2,)), ((2,), ())], width=2), "remask")
    kinds = [(c.kind, c.x, c.y) for c in view.cells]
    cell = (MAP_WIDTH - PAD_LEFT - PAD_RIGHT) / 2
    row = view.row_height
    assert kinds == [
        ("commit", PAD_LEFT, PAD_TOP),
        ("undone", round(PAD_LEFT + cell, 2), PAD_TOP),
        ("remask", round(PAD_LEFT + cell, 2), round(PAD_TOP + row, 2)),
        ("commit", round(PAD_LEFT + cell, 2), round(PAD_TOP + 2 * row, 2)),
    ]
    assert view.remasks == 1 and "1 sent back to blank and decided again" in view.summary


def test_a_long_run_stays_within_the_plot_height() -> None:
    view = decision_map(run([((i,), ()) for i in range(1, 65)], width=64), "AR")
    assert view.plot_bottom - view.plot_top <= 360 + 1e-6
    assert all(PAD_TOP <= c.y < view.plot_bottom for c in view.cells)
