"""/train in a real browser: the curves grow while the twins train and the measured summary lands; the embed fits
a 960x540 slide idle and after a run; a phone never scrolls sideways. The served experiment, on budgets of seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.app.live import Live, live_server


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    """The engine sets torch's threads and inference mode in its workers, as the server does (the training needs the
    former to keep pace on a shared machine and must switch the latter off); torch's threads are restored after."""
    import torch

    threads = torch.get_num_threads()
    with live_server(step_seconds=0.01, use_torch=True, prewarm=True) as server:  # the default run: its recording
        yield server
    torch.set_num_threads(threads)


SHOWN_LINE = "#frames .train-frame:not(.placeholder) path.heldout.c-0"
HELD_OUT_POINTS = f"() => Number(document.querySelector('{SHOWN_LINE}')?.dataset.points || 0)"


def test_the_curves_grow_while_training_and_the_summary_lands(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/train?seconds=10&seed=2&autoplay=1")
    seen: list[int] = []
    deadline = time.monotonic() + 30
    while page.locator("#notice.done").count() == 0:
        assert time.monotonic() < deadline, "the run did not finish"
        seen.append(page.evaluate(HELD_OUT_POINTS))
        time.sleep(0.25)
    growing = sorted(set(seen) - {0})
    assert len(growing) >= 3, seen  # the plot was redrawn with more points at least three times before the end
    expect(page.locator("#result .train-summary tbody tr")).to_have_count(2)
    expect(page.locator("#notice")).to_contain_text("Held out, twin: best")
    page.keyboard.press("Home")  # the player scrubs back to the untrained point: nothing plotted yet
    expect(page.locator("#frames .train-frame:not(.placeholder) .curves.empty")).to_have_count(1)
    assert page.console_errors == []


# a short live run, and the default (its recording: 144 points, the longest counters) in the projector theme
@pytest.mark.parametrize("query", ["?seconds=4", "?theme=projector"])
def test_the_embed_fits_a_slide_idle_and_after_a_run(browser: Any, live: Live, query: str) -> None:
    context = browser.new_context(viewport={"width": 960, "height": 540})
    page = context.new_page()
    page.goto(f"{live.http}/embed/train{query}")
    size = "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    assert page.evaluate(size) == [960, 540], "idle"
    page.click("#generate")
    page.wait_for_selector("#notice.done", timeout=30_000)
    page.keyboard.press("End")
    assert page.evaluate(size) == [960, 540], "after a run"
    expect(page.locator("#frames .train-frame:not(.placeholder) svg.curves")).to_be_visible()
    context.close()


def test_a_phone_never_scrolls_sideways(browser: Any, live: Live) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live.http}/train?seconds=3")
    assert page.evaluate("document.documentElement.scrollWidth") == 390, "idle"
    page.click("#generate")
    page.wait_for_selector("#notice.done", timeout=30_000)
    assert page.evaluate("document.documentElement.scrollWidth") == 390, "after a run"
    context.close()
