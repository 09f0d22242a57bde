"""The forward process in a real browser: dragging the slider swaps in x_t at the new t, and the URL follows."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.app.live import Live

XT = "#forward-figure #forward-xt"


def drag_to(page: Any, t: int) -> None:
    """What dragging does: the range input's value changes and it fires `input`."""
    script = "(el, t) => { el.value = String(t); el.dispatchEvent(new Event('input', {bubbles: true})); }"
    page.locator("#forward-t").evaluate(script, t)


def test_dragging_the_slider_changes_x_t_and_the_url(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/image/forward?index=5&t=100")
    xt = page.locator(XT)
    expect(xt).to_have_count(1)
    before = xt.get_attribute("src")
    expect(page.locator("#forward-figure .forward-figure")).to_have_attribute("data-t", "100")

    drag_to(page, 900)
    expect(page.locator("#forward-figure .forward-figure")).to_have_attribute("data-t", "900")
    expect(xt).not_to_have_attribute("src", before or "")
    expect(page).to_have_url(re.compile(r"/image/forward\?index=5&t=900$"))
    expect(page.locator("#forward-figure svg.schedule")).to_have_attribute("aria-label", re.compile(r"t = 900"))

    drag_to(page, 100)  # back: the same picture as before (fixed noise per digit)
    expect(page.locator("#forward-figure .forward-figure")).to_have_attribute("data-t", "100")
    expect(xt).to_have_attribute("src", before or "")
    expect(page).to_have_url(re.compile(r"/image/forward\?index=5&t=100$"))

    page.click("#forward-next")
    expect(page).to_have_url(re.compile(r"/image/forward\?index=6&t=100$"))
    expect(page.locator("#forward-index")).to_have_value("6")
    assert page.console_errors == []
