"""The image race (/race/image) in a real browser: fake models, real sockets, the shared player."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from app.backends.fakes import FakeImage, FakeImageRace, FakeRace, FakeText
from app.backends.interface import Backends
from tests.app.live import Live, live_server
from tests.browser.buffer import frame_attributes, frame_count
from tests.browser.test_accessibility import violations
from tests.browser.test_lecture import page_size
from tests.browser.test_player import VISIBLE, embedding_host, host_page, scrub_to, status_starts

SIZE = 28
URL = "/race/image?digit=2&steps=20&seed=1"  # 20 DDPM passes, then one frame a painted row: 49 frames


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    """This module's server: the fakes of every demo, the image race's among them."""
    step = 0.01
    backends = Backends(FakeText(step), FakeImage(step), FakeRace(step), image_race=FakeImageRace(step))
    with live_server(backends=backends) as server:
        yield server


def counter(page: Any, lane: str, label: str = "forward passes") -> str:
    return page.locator(f"{VISIBLE} .lane-{lane} .ctr", has_text=label).locator("b").text_content()


def cursor(page: Any) -> tuple[int, int]:
    rect = page.locator(f"{VISIBLE} .lane-ar rect.cursor")
    return int(rect.get_attribute("x")), int(rect.get_attribute("y"))


def run_to_the_end(page: Any, url: str) -> None:
    page.goto(url)
    page.click("#generate")
    page.wait_for_selector("#notice.done")


def test_both_lanes_animate_and_one_scrub_moves_both(page: Any, live: Live, artifacts: Path) -> None:
    page.goto(f"{live.http}{URL}")
    assert page.locator(".placeholder .lane").count() == 2 and page.locator(".placeholder .race-px").count() == 3
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    assert frame_count(page) == 49
    page.keyboard.press("End")  # 49 frames take 6 s to play at 8 a second: go to the last
    status_starts(page, "pass 784 of 784: autoregressive 784 of 784 passes, diffusion 20 of 20 passes")

    # the AR cursor walks the raster one pixel a pass, frame after frame; the DDPM's x0 changes every pass
    xs = frame_attributes(page, ".lane-ar rect.cursor", "x")
    ys = frame_attributes(page, ".lane-ar rect.cursor", "y")
    cursors = [(x, y) for x, y in zip(xs[:-1], ys[:-1]) if x is not None and y is not None]
    assert len(cursors) == len(xs) - 1  # a cursor in every frame but the last
    positions = [int(y) * SIZE + int(x) for x, y in cursors]
    assert positions == sorted(set(positions)) and positions[:3] == [0, 1, 2] and xs[-1] is None  # no cursor when done
    x0 = frame_attributes(page, ".lane-diffusion figure:nth-of-type(2) image", "href")
    assert x0[0] is None and len(set(x0[1:21])) == 20 and len(set(x0[20:])) == 1  # refined each pass, then final
    canvases = frame_attributes(page, ".lane-ar image", "href")
    assert len(set(canvases)) > 10 and canvases[0] != canvases[-1]  # ink arrives row by row (blank rows add none)

    page.keyboard.press("End")
    assert counter(page, "ar") == "784/784" and counter(page, "diffusion") == "20/20"
    assert page.locator(f"{VISIBLE} .lane.finished").count() == 2
    expect(page.locator(f"{VISIBLE} .lane-ar .finish")).to_have_text(re.compile(r"^finished: 784 passes, \d+\.\d\d s$"))
    page.screenshot(path=str(artifacts / "image-race-done.png"), full_page=True)

    scrub_to(page, 5)  # one player, both lanes: pass 5 is 5 pixels painted and 5 denoising steps
    assert counter(page, "ar") == "5/784" and counter(page, "diffusion") == "5/20" and cursor(page) == (5, 0)
    page.keyboard.press("ArrowRight")
    assert counter(page, "ar") == "6/784" and counter(page, "diffusion") == "6/20" and cursor(page) == (6, 0)
    scrub_to(page, 30)  # after the DDPM's 20 passes, one frame a row: pass 280
    assert counter(page, "ar") == "280/784" and counter(page, "diffusion") == "20/20" and cursor(page) == (0, 10)
    assert (
        page.locator(f"{VISIBLE} .lane-diffusion .finish").count() == 1
        and page.locator(f"{VISIBLE} .lane-ar .finish").count() == 0
    )
    page.screenshot(path=str(artifacts / "image-race-mid.png"), full_page=True)

    # pixels stay pixels (CSS, no style attribute) and the cursor is a visible box on the canvas
    image = page.locator(f"{VISIBLE} .lane-ar image")
    assert image.evaluate("(el) => getComputedStyle(el).imageRendering") == "pixelated"
    box = page.locator(f"{VISIBLE} .lane-ar rect.cursor").bounding_box()
    assert box is not None and box["width"] > 5 and box["height"] > 5
    assert "fewer forward passes" in page.locator("#result .verdict").text_content()
    assert page.console_errors == []


def test_the_forced_mistake_is_outlined_in_both_lanes_and_judged_at_the_end(page: Any, live: Live) -> None:
    run_to_the_end(page, f"{live.http}{URL}&mistake=true")
    page.keyboard.press("End")
    assert page.locator(f"{VISIBLE} path.forced").count() == 3  # the canvas, x_t and x0
    assert counter(page, "ar") == "768/768"  # the stroke's 16 pixels take no pass
    scrub_to(page, 2)  # before the DDPM's mistake step (10 of 20: the default timing, middle): no stroke anywhere
    assert page.locator(f"{VISIBLE} path.forced").count() == 0
    scrub_to(page, 10)  # the DDPM has it, the painter has not reached row 7
    assert page.locator(f"{VISIBLE} .lane-diffusion path.forced").count() == 2
    assert page.locator(f"{VISIBLE} .lane-ar path.forced").count() == 0
    outcomes = page.locator("#result .mistake-outcomes li")
    expect(outcomes).to_have_count(2)
    assert "now reads as" in outcomes.nth(0).text_content() and "still reads as a 2" in outcomes.nth(1).text_content()
    assert "committed samples" in outcomes.nth(0).text_content()  # one run is one draw: the measured rate beside it
    assert page.locator("input[name=mistake]").is_checked()
    assert page.locator("select[name=mistake_at]").input_value() == "middle"
    assert page.console_errors == []


def test_a_digit_key_picks_the_digit_and_starts_a_race(page: Any, live: Live) -> None:
    page.goto(f"{live.http}{URL}")
    page.keyboard.press("7")
    page.wait_for_selector("#notice.done")
    assert "digit=7" in page.url and page.locator("#digit").input_value() == "7"
    assert page.sockets and page.sockets[-1].url.endswith("/ws/race/image")


def test_embed_posts_its_height_and_has_no_site_chrome(page: Any, live: Live, artifacts: Path) -> None:
    with host_page(embedding_host(f"{live.http}/embed{URL}&autoplay=1", width=900)) as url:
        page.goto(url)
        page.wait_for_function("window.heights.length > 0 && window.heights[window.heights.length - 1] > 100")
        frame = page.frame_locator("#demo")
        frame.locator("#notice.done").wait_for()
        expect(frame.locator("#status")).to_have_text(re.compile(r"^pass \d+ of 784: autoregressive"))
        assert frame.locator("header.top").count() == 0 and frame.locator("h1").count() == 1
        page.screenshot(path=str(artifacts / "embed-image-race.png"), full_page=True)


@pytest.mark.parametrize("size", [(960, 540), (1280, 720)])
def test_the_embed_fits_a_slide_idle_and_after_a_run(browser: Any, live: Live, size: tuple[int, int], artifacts: Path) -> None:
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(f"{live.http}/embed/race/image?mistake=true")  # the default 50 steps
    assert page_size(page) == (width, height), "idle"
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    page.keyboard.press("End")
    assert page_size(page) == (width, height), "after a run"
    if size == (960, 540):
        page.screenshot(path=str(artifacts / "slide-embed-race-image.png"))
    context.close()


@pytest.mark.parametrize("path", ["/race/image", "/embed/race/image"])
def test_a_phone_never_scrolls_sideways(browser: Any, live: Live, path: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live.http}{path}")
    assert page_size(page)[0] == 390, "idle"
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    assert page_size(page)[0] == 390, "after a run"
    context.close()


# tests/browser/test_accessibility.py's list runs on the shared server, which has no image race: the same check here
@pytest.mark.parametrize("path", ["/race/image?mistake=true", "/embed/race/image", "/race/image?theme=projector"])
def test_no_blocking_accessibility_violations_before_and_after_a_run(browser: Any, live: Live, path: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{live.http}{path}")
    assert violations(page) == [], "before a run"
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    page.keyboard.press("End")
    assert violations(page) == [], "after a run"
    context.close()
