"""axe-core (bundled by axe-playwright-python) on every page, before and after a run: no critical, serious or
moderate violations, in both themes."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.app.live import Live

PAGES = [
    "/",
    "/text",
    "/image",
    "/image/forward",
    "/image/inpaint",
    "/image?source=4&start_t=600",
    "/image/grid?steps=8",
    "/image/samplers?ddpm_steps=12&ddim_steps=6&dpm_steps=3",
    "/embed/image/samplers?ddpm_steps=12&ddim_steps=6&dpm_steps=3",
    "/race",
    "/why",
    "/replay",
    "/embed/text",
    "/embed/image",
    "/embed/race",
    "/text?theme=projector",
    "/race?theme=projector",
    "/embed/race?theme=dark",
    "/text?length=16&steps=8&edit_at=2&edit_word=sad",  # a rework: the note, then the before/after view and form
    "/race?length=16&steps=8&edit_at=2&edit_word=sad&window=2",
    "/embed/text?length=16&steps=8&edit_at=2&edit_word=sad&theme=projector",
    "/train?seconds=3",  # the live twins: a short budget, the curves and samples, then the summary table
    "/embed/train?seconds=3&theme=projector",
]
BLOCKING = ("critical", "serious", "moderate")


def violations(page: Any) -> list[tuple[str, str, list[str]]]:
    result = Axe().run(page)
    return [
        (v["id"], v["impact"], [str(n["target"]) for n in v["nodes"][:3]])
        for v in result.response["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("path", PAGES)
def test_no_blocking_accessibility_violations_before_and_after_a_run(browser: Any, live: Live, path: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{live.http}{path}")
    assert violations(page) == [], "before a run"
    if page.locator("#generate").count():
        page.click("#generate")
        page.wait_for_selector("#notice.done")
        page.keyboard.press("End")  # the finished canvas, the decision maps and the export links
        assert violations(page) == [], "after a run"
    context.close()
