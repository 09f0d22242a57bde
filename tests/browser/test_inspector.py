"""The token inspector, corrections you can read and a light page, in a real browser: the committed checkpoints
for the inspector and the corrections, the stand-in models for the 192-token run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.app.live import Live, live_server
from tests.browser.buffer import frame_count, live_elements
from tests.browser.test_player import scrub_to

DOM_BOUND = 2_400  # elements after a 192-token, 256-step run (2,126 measured: the rework form lists every word)

TOKENS = """([index, lane]) => {
  const data = window.theaterPlayer.frames[index].data;
  return lane === null ? data.tokens : data.lanes[lane].tokens;
}"""


@pytest.fixture(scope="module")
def real() -> Iterator[Live]:
    from app.backends.load import load_backends
    from app.settings import Settings

    with live_server(backends=load_backends(Settings()), use_torch=True) as server:
        yield server


def finished_run(page: Any, url: str) -> None:
    page.goto(url)
    page.click("#generate")
    page.wait_for_selector("#notice.done", timeout=60_000)
    page.click("[data-act=end]")  # pauses on the last frame


def chip(page: Any, position: int) -> Any:
    return page.locator("#frames .frame:not(.placeholder) .canvas .tok").nth(position)


def percent(p: float) -> str:
    return "100%" if p >= 0.995 else "<1%" if 0 < p < 0.005 else f"{round(p * 100)}%"


@pytest.mark.real_model
def test_the_inspector_shows_what_the_frames_carried_and_follows_the_player(page: Any, real: Live) -> None:
    finished_run(page, f"{real.http}/text?length=16&steps=8&seed=4")
    last = frame_count(page) - 1
    tokens = page.evaluate(TOKENS, [last, None])
    position = next(i for i, t in enumerate(tokens) if t["state"] != "fixed" and t["committed_at"] > 1)
    token = tokens[position]
    chip(page, position).click()
    panel = page.locator("#inspector")
    expect(panel).to_be_visible()
    expect(panel.locator("h2")).to_contain_text(f"Token {position + 1}")
    expect(panel).to_contain_text(f"Decided at step {token['committed_at']}")
    expect(panel).to_contain_text(f"confidence {percent(token['confidence'])}")
    first_alternative = panel.locator("section").first.locator("li").first
    expect(first_alternative).to_contain_text(f"{token['alternatives'][0][0].strip()} {percent(token['alternatives'][0][1])}")

    # scrub to the step before it was decided: the panel follows, with that step's guesses for the blank
    before = token["committed_at"] - 1
    scrub_to(page, before)
    blank = page.evaluate(TOKENS, [before, None])[position]
    assert blank["state"] in ("blank", "remasked") and blank["alternatives"]
    expect(panel.locator("h2")).to_contain_text(f"blank at step {before}")
    now = panel.locator("section").nth(1)
    expect(now).to_contain_text(f"At step {before} (shown)")
    expect(now.locator("li")).to_have_count(len(blank["alternatives"]))
    expect(now.locator("li").first).to_contain_text(percent(blank["alternatives"][0][1]))
    expect(panel).to_contain_text(f"Decided at step {token['committed_at']}")  # what it will become, from the buffer
    assert page.console_errors == []


@pytest.mark.real_model
def test_the_inspector_by_keyboard_alone(page: Any, real: Live) -> None:
    finished_run(page, f"{real.http}/text?length=12&steps=6&seed=2")
    page.focus("[data-act=end]")
    for _ in range(30):  # Tab on until a token chip has focus: the canvas is one stop
        page.keyboard.press("Tab")
        if page.evaluate("() => !!document.activeElement.closest('#frames .canvas')"):
            break
    else:
        pytest.fail("no token chip took the focus")
    panel = page.locator("#inspector")
    expect(panel).to_be_visible()
    expect(panel.locator("h2")).to_contain_text("Token 1")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(panel.locator("h2")).to_contain_text("Token 3")
    assert page.evaluate("() => document.activeElement.classList.contains('inspected')")
    status = page.locator("#status").text_content()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert page.evaluate("() => document.activeElement.matches('#frames .canvas .tok')")  # focus stays put
    assert page.locator("#status").text_content() == status  # the arrows moved between chips, not the player
    page.keyboard.press("ArrowLeft")  # closed: the arrows step the player again
    expect(page.locator("#status")).not_to_have_text(status or "")


@pytest.mark.real_model
def test_a_token_sent_back_shows_what_it_was_and_the_inspector_lists_the_change(page: Any, real: Live) -> None:
    finished_run(page, f"{real.http}/text?length=24&steps=12&seed=3&remask=loop")
    expect(page.locator("#frames .frame:not(.placeholder) .counters")).to_contain_text(re.compile(r"\d+ changes of mind"))
    frames = frame_count(page)
    found = None
    for index in range(frames):
        for position, token in enumerate(page.evaluate(TOKENS, [index, None])):
            if token["state"] == "remasked" and token["was"]:
                found = (index, position, token)
                break
        if found:
            break
    assert found, "this seed's run sends tokens back (measured: 4 times)"
    index, position, token = found
    scrub_to(page, index)
    ghost = chip(page, position).locator("s.was")
    expect(ghost).to_have_text(token["was"].strip() or "\u2423")
    chip(page, position).click()
    expect(page.locator("#inspector")).to_contain_text(f"it was \u201c{token['was'].strip()}\u201d")
    expect(page.locator("#inspector")).to_contain_text(re.compile(r"Sent back to blank \d+ times?"))
    expect(page.locator("#inspector li", has_text="sent back")).not_to_have_count(0)


def test_a_192_token_256_step_run_keeps_the_page_light_and_every_frame_playable(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/text?length=192&steps=256&seed=1")
    page.click("#generate")
    page.wait_for_selector("#notice.done", timeout=60_000)
    assert frame_count(page) == 257
    assert live_elements(page) < DOM_BOUND
    scrub_to(page, 0)
    expect(page.locator("#frames .frame:not(.placeholder) .tok.blank")).to_have_count(192)
    scrub_to(page, 256)
    expect(page.locator("#frames .frame:not(.placeholder) .tok.blank")).to_have_count(0)
    assert page.locator("#frames .frame:not(.placeholder)").count() == 1 and live_elements(page) < DOM_BOUND
