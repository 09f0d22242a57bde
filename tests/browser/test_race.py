"""The race, the text page's decision map and the why page in a real browser (fake models, real sockets)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.app.live import Live
from tests.browser.buffer import frame_count
from tests.browser.test_player import (
    VISIBLE,
    embedding_host,
    host_page,
    mark_done_stale,
    scrub_to,
    status_starts,
    wait_for_new_done,
)


def lane_counts(page: Any) -> dict[str, str]:
    """Each visible lane's 'tokens decided' counter, by lane."""
    return {
        name: page.locator(f"{VISIBLE} .lane-{name} .ctr", has_text="tokens decided").locator("b").text_content()
        for name in ("diffusion", "ar")
    }


def test_race_animates_both_lanes_and_one_scrub_moves_both(page: Any, live: Live, artifacts: Path) -> None:
    page.goto(f"{live.http}/race?prompt=Once+upon+a+time&length=12&steps=4&seed=2")
    assert page.locator(".placeholder .lane").count() == 2
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    status_starts(page, "pass 12 of 12")
    assert frame_count(page) == 13
    assert lane_counts(page) == {"diffusion": "12/12", "ar": "12/12"}
    assert page.locator(f"{VISIBLE} .lane.finished").count() == 2
    page.screenshot(path=str(artifacts / "race-done.png"), full_page=True)

    scrub_to(page, 2)  # one player, both lanes: pass 2 is 6 diffusion tokens and 2 autoregressive ones
    assert lane_counts(page) == {"diffusion": "6/12", "ar": "2/12"}
    assert page.locator(f"{VISIBLE} .lane-ar .tok.blank").count() == 10
    page.keyboard.press("ArrowRight")
    assert lane_counts(page) == {"diffusion": "9/12", "ar": "3/12"}
    page.keyboard.press("End")
    assert lane_counts(page) == {"diffusion": "12/12", "ar": "12/12"}

    maps = page.locator("#result .decision-map")
    expect(maps).to_have_count(2)
    assert "left to right, one per pass" in maps.nth(1).locator(".map-summary").text_content()
    assert maps.nth(0).locator("svg rect.commit").count() == 12 and maps.nth(1).locator("svg rect.commit").count() == 12
    line = maps.nth(1).locator("line.now")
    bottom = float(line.get_attribute("y1"))
    scrub_to(page, 3)  # the maps follow the player
    assert float(line.get_attribute("y1")) < bottom
    assert "fewer forward passes" in page.locator("#result .verdict").text_content()
    assert page.console_errors == []


def test_the_race_streams_while_it_computes(browser: Any, artifacts: Path) -> None:
    from tests.app.live import live_server

    with live_server(step_seconds=0.2) as slow:  # 20 diffusion passes take 4 s: frames must show before the end
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{slow.http}/race?length=20&steps=20&seed=1")
        page.click("#generate")
        # At one moment: a frame between the first and the last is shown and the run is not done yet.
        page.wait_for_function(
            """() => {
            const shown = document.querySelector('#frames .frame:not([hidden]):not(.placeholder)');
            const step = shown ? parseInt(shown.dataset.step, 10) : 0;
            return step >= 2 && step < 20 && !document.querySelector('#notice.done');
        }""",
            timeout=10_000,
        )
        page.wait_for_selector("#notice.done", timeout=20_000)
        context.close()


def test_text_page_shows_its_decision_map_and_changes_of_mind(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/text?length=16&steps=8&seed=4&remask=cap")
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    maps = page.locator("#result .decision-map")
    expect(maps).to_have_count(1)
    assert maps.locator("svg[role=img]").get_attribute("aria-label").startswith("Decision map, this run: 16 tokens")
    assert maps.locator(".map-steps li").count() >= 1
    changes = page.locator("#result .changes li")
    if maps.locator("svg rect.remask").count():  # the fake remasks at random: when it did, each one is listed
        assert changes.count() == maps.locator("svg rect.remask").count()
        assert re.search(r"sent back at step \d+", changes.first.text_content())
    page.fill("input[name=seed]", "5")
    mark_done_stale(page)
    page.click("#generate")  # a new run replaces the old result: one map, never two
    wait_for_new_done(page)
    expect(page.locator("#result .decision-map")).to_have_count(1)


def test_embed_race_posts_its_height_and_has_no_site_chrome(page: Any, live: Live, artifacts: Path) -> None:
    with host_page(embedding_host(f"{live.http}/embed/race?length=8&steps=4&autoplay=1", width=900)) as url:
        page.goto(url)
        page.wait_for_function("window.heights.length > 0 && window.heights[window.heights.length - 1] > 100")
        frame = page.frame_locator("#demo")
        frame.locator("#notice.done").wait_for()
        expect(frame.locator("#status")).to_have_text(re.compile("^pass 8 of 8"))
        assert frame.locator("header.top").count() == 0 and frame.locator("h1").count() == 1
        page.screenshot(path=str(artifacts / "embed-race.png"), full_page=True)


def test_why_page_renders_its_plot_and_a_live_mini_race(page: Any, live: Live, artifacts: Path) -> None:
    page.goto(f"{live.http}/why")
    plot = page.locator("svg[role=img]").first
    expect(plot).to_be_visible()
    assert page.locator("svg path, svg polyline").count() >= 6  # held-out and training curves of three runs
    race = page.frame_locator("iframe[src^='/embed/race']")
    race.locator("#notice.done").wait_for(timeout=20_000)
    expect(race.locator("#status")).to_have_text(re.compile(r"^pass \d+ of \d+"))
    assert race.locator("#result .decision-map").count() == 2
    page.screenshot(path=str(artifacts / "why.png"), full_page=True)
    assert page.console_errors == []
