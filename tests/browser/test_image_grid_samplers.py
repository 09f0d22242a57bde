"""The grid (/image/grid) and the samplers side by side (/image/samplers) in a real browser: fake models, real
sockets, the shared player."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.app.live import Live
from tests.browser.buffer import frame_attributes, frame_count
from tests.browser.test_player import VISIBLE, scrub_to, status_starts

GRID = "/image/grid?digit=4&steps=6&seed=3"
SAMPLERS = "/image/samplers?digit=4&ddpm_steps=20&ddim_steps=8&dpm_steps=3&seed=1"


def run_to_the_end(page: Any, url: str) -> None:
    page.goto(url)
    page.click("#generate")
    page.wait_for_selector("#notice.done")


def test_the_grid_shows_16_tiles_a_sheet_with_a_label_under_each(page: Any, live: Live, artifacts: Path) -> None:
    page.goto(f"{live.http}{GRID}")
    assert page.locator(".placeholder .grid-px rect.empty").count() == 32  # both sheets' boxes before a run
    before = page.locator(".placeholder .grid-px").nth(1).bounding_box()
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    assert frame_count(page) == 7
    page.keyboard.press("End")
    status_starts(page, "step 6 of 6")
    sheets = page.locator(f"{VISIBLE} .grid-px")
    expect(sheets).to_have_count(2)
    after = sheets.nth(1).bounding_box()
    assert before is not None and after is not None
    assert (round(before["width"]), round(before["height"])) == (round(after["width"]), round(after["height"]))
    for k in range(2):  # 16 windows onto one PNG a sheet, each drawn at its size on screen
        assert sheets.nth(k).locator("use").count() == 16 and sheets.nth(k).locator("image").count() == 1
        tile = sheets.nth(k).locator("svg").nth(5).bounding_box()
        assert tile is not None and tile["width"] > 60 and abs(tile["width"] - tile["height"]) < 1
    labels = sheets.nth(1).locator("text.tile-label")
    expect(labels).to_have_count(16)
    assert sheets.nth(1).locator("text.tile-label.miss").count() == 2  # the fake reads every eighth as a 5
    assert labels.nth(0).text_content().startswith("4 ") and labels.nth(7).text_content().startswith("5 ")
    assert sheets.nth(0).evaluate("(el) => getComputedStyle(el).imageRendering") == "pixelated"
    expect(page.locator("#notice")).to_contain_text(
        "The classifier reads 14 of the 16 as the 4 asked for, with a mean confidence of"
    )
    page.screenshot(path=str(artifacts / "image-grid.png"), full_page=True)
    x0 = frame_attributes(page, ".grid-px:nth-of-type(1) image", "href")
    assert len(set(x0)) == 7  # one sheet a step
    assert page.console_errors == []


def lane_step(page: Any, lane: str) -> str:
    return page.locator(f"{VISIBLE} .lane-{lane} .ctr", has_text="step").locator("b").text_content()


def test_the_samplers_play_three_lanes_to_the_end_and_one_scrub_moves_them_all(page: Any, live: Live, artifacts: Path) -> None:
    page.goto(f"{live.http}{SAMPLERS}")
    assert page.locator(".placeholder .sampler-lane").count() == 3 and page.locator(".placeholder .sampler-px").count() == 6
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    assert frame_count(page) == 21
    # played, not jumped to: the player reaches the last frame on its own
    status_starts(page, "frame 20 of 20: DDPM step 20 of 20, DDIM step 8 of 8, DPM-Solver++ step 3 of 3")
    assert page.locator(f"{VISIBLE} .sampler-lane.finished").count() == 3
    assert [lane_step(page, lane) for lane in ("ddpm", "ddim", "dpm")] == ["20 of 20", "8 of 8", "3 of 3"]
    page.screenshot(path=str(artifacts / "image-samplers-done.png"), full_page=True)

    scrub_to(page, 10)  # half of every run
    assert [lane_step(page, lane) for lane in ("ddpm", "ddim", "dpm")] == ["10 of 20", "4 of 8", "2 of 3"]
    page.keyboard.press("ArrowRight")
    assert [lane_step(page, lane) for lane in ("ddpm", "ddim", "dpm")] == ["11 of 20", "4 of 8", "2 of 3"]
    scrub_to(page, 0)
    assert [lane_step(page, lane) for lane in ("ddpm", "ddim", "dpm")] == ["0 of 20", "0 of 8", "0 of 3"]
    assert page.locator(f"{VISIBLE} .sampler-lane .px.empty").count() == 3  # no x0 before a lane's first step

    # a lane with fewer steps holds its picture between its steps: DPM-Solver++ shows 4 distinct x0s in 21 frames
    dpm = frame_attributes(page, ".lane-dpm figure:nth-of-type(2) img", "src")
    ddpm = frame_attributes(page, ".lane-ddpm figure:nth-of-type(2) img", "src")
    assert len(set(dpm) - {None}) == 3 and len(set(ddpm) - {None}) == 20
    outcomes = page.locator("#result .sampler-outcomes li")
    expect(outcomes).to_have_count(3)
    assert "fewer forward passes than DDPM" in page.locator("#result .verdict").text_content()
    assert page.console_errors == []
