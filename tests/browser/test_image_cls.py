"""Cumulative layout shift on the image pages (issue 12, item 6): the first frame lands in space kept for it.

CLS as Lighthouse and web-vitals count it (all of it, not a session window: an upper bound): every 'layout-shift'
entry without recent input, from page start (`buffered: true`), summed once the run has been played to its end.
The browser shows classic scrollbars (headless Chromium hides them by default): Lighthouse's 0.69 was mostly the
page narrowing when its scrollbar appeared, which an overlay scrollbar never shows.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from models.image.masks import encode_mask, preset_mask
from tests.app.live import Live
from tests.browser.conftest import CHROMIUM_ARGS

LIMIT = 0.05

# A function, not an expression: the page's CSP forbids eval. Buffered entries arrive in the first callback;
# takeRecords() then picks up any still queued.
CLS = """() => new Promise((resolve) => {
  let sum = 0;
  const add = (entries) => { for (const e of entries) if (!e.hadRecentInput) sum += e.value; };
  const observer = new PerformanceObserver((list) => add(list.getEntries()));
  observer.observe({type: 'layout-shift', buffered: true});
  setTimeout(() => { add(observer.takeRecords()); observer.disconnect(); resolve(sum); }, 250);
})"""


@pytest.fixture(scope="module")
def scrollbars(browser: Any) -> Iterator[Any]:
    """Chromium as `browser`, but with classic scrollbars that take room from the page."""
    launched = browser.browser_type.launch(
        executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, ignore_default_args=["--hide-scrollbars"]
    )
    yield launched
    launched.close()


def cumulative_layout_shift(page: Any) -> float:
    return float(page.evaluate(CLS))


def played_to_the_end(page: Any, steps: int) -> None:
    expect(page.locator("#notice.done")).to_have_count(1, timeout=20_000)
    expect(page.locator("#status")).to_have_text(re.compile(rf"^step {steps} of {steps}\b"), timeout=20_000)


def run_cls(browser: Any, url: str, size: tuple[int, int], steps: int, click: bool) -> float:
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    try:
        page.goto(url)
        if click:  # shifts within 500 ms of the click do not count; the frames land later than that
            page.click("#generate")
        if steps:
            played_to_the_end(page, steps)
        else:
            page.wait_for_timeout(500)
        return cumulative_layout_shift(page)
    finally:
        context.close()


@pytest.mark.parametrize(
    ("path", "click"),
    [
        ("/image?autoplay=1", False),  # Lighthouse's 0.69 before the fix
        ("/image", True),
        ("/embed/image?autoplay=1", False),
        ("/image?autoplay=1&theme=projector", False),
        ("/image?autoplay=1&source=4&start_t=600", False),  # the image lab: a third picture, the original
        (f"/image?autoplay=1&source=4&mask={encode_mask(preset_mask('top'))}", False),
    ],
)
@pytest.mark.parametrize("size", [(1280, 900), (1350, 940), (1920, 1080), (412, 915)])
def test_image_pages_do_not_jump_when_the_first_frame_lands(
    scrollbars: Any, live: Live, path: str, click: bool, size: tuple[int, int]
) -> None:
    steps = 12
    url = f"{live.http}{path}{'&' if '?' in path else '?'}steps={steps}&seed=3&digit=7"
    cls = run_cls(scrollbars, url, size, steps, click)
    print(f"CLS {path} {size}: {cls:.4f}")
    assert cls < LIMIT, f"{path} at {size}: CLS {cls:.3f}"


@pytest.mark.parametrize("path", ["/image", "/embed/image", "/image/inpaint", "/image/forward"])
def test_idle_image_pages_do_not_jump(scrollbars: Any, live: Live, path: str) -> None:
    cls = run_cls(scrollbars, f"{live.http}{path}", (1280, 900), 0, False)
    print(f"CLS {path} idle: {cls:.4f}")
    assert cls < LIMIT


@pytest.mark.parametrize(
    ("path", "last"),
    [
        ("/image/grid?steps=12&seed=3&digit=7", "step 12 of 12"),
        ("/image/samplers?ddpm_steps=12&ddim_steps=6&dpm_steps=3&seed=3&digit=7", "frame 12 of 12"),
        ("/embed/image/grid?steps=12&seed=3&digit=7", "step 12 of 12"),
        ("/embed/image/samplers?ddpm_steps=12&ddim_steps=6&dpm_steps=3&seed=3&digit=7", "frame 12 of 12"),
    ],
)
@pytest.mark.parametrize("size", [(1350, 940), (412, 915)])
def test_grid_and_samplers_pages_do_not_jump_when_the_frames_land(
    scrollbars: Any, live: Live, path: str, last: str, size: tuple[int, int]
) -> None:
    """The grid's two sheets and the three sampler lanes keep their boxes from the start, autoplayed to the end."""
    context = scrollbars.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    try:
        page.goto(f"{live.http}{path}&autoplay=1")
        expect(page.locator("#notice.done")).to_have_count(1, timeout=20_000)
        expect(page.locator("#status")).to_have_text(re.compile("^" + re.escape(last)), timeout=20_000)
        cls = cumulative_layout_shift(page)
    finally:
        context.close()
    print(f"CLS {path} {size}: {cls:.4f}")
    assert cls < LIMIT, f"{path} at {size}: CLS {cls:.3f}"
