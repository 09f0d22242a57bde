"""When is it decided, in a real browser: each frame's timeline holds the steps so far, and the done message
says at which step the final digit first passed 50%."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.app.live import Live
from tests.browser.buffer import frame_attributes, frame_html

VISIBLE = "#frames .frame:not([hidden])"


def strip_width(html: str) -> int:
    """Columns the strip covers so far: the longest row of its shaded rectangles (M start row h length ...)."""
    ends = [int(start) + int(n) for start, n in re.findall(r"M(\d+) \d+h(\d+)v1", html)]
    return max(ends, default=0)


def test_the_timeline_grows_during_a_run_and_done_says_when_it_was_decided(page: Any, live: Live) -> None:
    steps = 20
    page.goto(f"{live.http}/image?digit=7&steps={steps}&seed=2&sampler=ddim")
    expect(page.locator(".placeholder .timeline.empty")).to_have_count(1)
    page.click("#generate")
    expect(page.locator("#notice.done")).to_have_count(1, timeout=15_000)
    html = frame_html(page)
    assert len(html) == steps + 1
    widths = [strip_width(h) for h in html]
    assert widths == list(range(1, steps + 2))  # one more column a step: the timeline so far, never the future
    labels = frame_attributes(page, "svg.timeline", "aria-label")
    assert all(label and label.startswith("Classifier on x0 over steps 0 to") for label in labels)
    assert labels[3] is not None and "over steps 0 to 3 of 20" in labels[3]
    decided = next(i for i, h in enumerate(html) if 'class="passed"' in h)
    assert f"leading digit 7 first passed 50% at step {decided} of {steps}" in (labels[-1] or "")
    assert "not passed 50% yet" in (labels[decided - 1] or "")

    notice = page.locator("#notice")
    expect(notice).to_have_text(re.compile(rf"; decided at step {decided} of {steps}\.$"))
    expect(page.locator("#result .decided-at")).to_have_text(
        f"Decided at step {decided} of {steps}: the classifier first gave the final digit 7 more than 50% at step {decided}."
    )
    page.keyboard.press("End")
    last = page.locator(f"{VISIBLE} svg.timeline")
    expect(last).to_have_attribute("role", "img")
    expect(last.locator("text.head")).to_have_text(f"leading 7: over 50% at step {decided}")
    expect(last.locator(".digits text.marked")).to_have_text("7")
    page.keyboard.press("Home")
    # step 0: pure noise, the fake classifier spreads its belief over the other nine (a tie: the lowest leads)
    expect(page.locator(f"{VISIBLE} svg.timeline text.head")).to_have_text("0: not over 50% yet")
    assert page.console_errors == []
