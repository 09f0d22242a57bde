"""A lecturer's first minute, in Chromium: the run plays where the viewer looks, words look like words, the status
follows the playback, /why's demos show all of themselves, and the type is large enough for a room."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from app.backends.fakes import FakeImage, FakeImageRace, FakeRace
from app.backends.interface import Backends
from app.backends.real import RealText
from tests.app.live import Live, live_server

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
SIZES = [(1280, 800), (1366, 768), (390, 844)]
DEMOS = ["/text", "/race", "/image", "/race/image?steps=20"]
MIN_FONT_PX = 14
SLIDE = (960, 540)
PHONE = (390, 844)


def open_page(browser: Any, url: str, size: tuple[int, int], reduced: bool = False) -> Any:
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, reduced_motion="reduce" if reduced else "no-preference"
    )
    page = context.new_page()
    page.goto(url)
    return page


def settle_scroll(page: Any) -> None:
    """Wait until a smooth scroll has come to rest."""
    page.wait_for_function(
        """() => new Promise((done) => {
            let last = window.scrollY, still = 0;
            const tick = () => {
                if (window.scrollY === last && ++still > 5) return done(true);
                if (window.scrollY !== last) still = 0;
                last = window.scrollY;
                requestAnimationFrame(tick);
            };
            requestAnimationFrame(tick);
        })"""
    )


def run_to_the_end(page: Any) -> None:
    """Generate, wait until the run is computed, and jump the player to its last frame (the result shows)."""
    page.click("#generate")
    page.wait_for_selector("#notice.done", state="attached")
    page.keyboard.press("End")


def in_viewport(page: Any, selector: str) -> bool:
    return bool(
        page.evaluate(
            """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
                          return r.bottom > 0 && r.top < window.innerHeight && r.height > 0; }""",
            selector,
        )
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("path", DEMOS)
def test_generate_shows_the_run_and_its_player_in_the_viewport(browser: Any, live: Live, path: str, size: Any) -> None:
    page = open_page(browser, f"{live.http}{path}", size)
    page.click("#generate")  # Playwright scrolls just enough to press it, as a person would
    page.wait_for_selector("#frames .frame:not(.placeholder)", state="attached")
    settle_scroll(page)
    assert in_viewport(page, "#frames .frame:not([hidden])"), "the run's canvas is off screen"
    assert in_viewport(page, "#player"), "the player is off screen"
    # and the canvas shows a good part of itself, not a sliver at the bottom edge
    top = page.evaluate("document.querySelector('#frames').getBoundingClientRect().top")
    assert top < size[1] * 0.5
    page.context.close()


def test_with_reduced_motion_the_stage_jumps_into_view(browser: Any, live: Live) -> None:
    page = open_page(browser, f"{live.http}/text", SIZES[0], reduced=True)
    page.click("#generate")
    page.wait_for_selector("#frames .frame:not(.placeholder)", state="attached")
    assert in_viewport(page, "#frames .frame:not([hidden])") and in_viewport(page, "#player")
    page.context.close()


@pytest.fixture(scope="module")
def real_live() -> Iterator[Live]:
    from models.text.model import load_text_model

    diffusion = load_text_model(CHECKPOINTS / "text-diffusion")
    backends = Backends(text=RealText(diffusion), image=FakeImage(), race=FakeRace(), image_race=FakeImageRace())
    with live_server(backends=backends) as server:
        yield server


# " jogging" is four pieces (" jo", "g", "g", "ing") for the committed tokenizer; the end-of-story token and a
# newline follow, as fixed text, so every frame has them.
PROMPT = "Tom went jogging.<|endoftext|>\nOnce upon a time"


@pytest.mark.real_model
def test_a_word_of_several_pieces_is_one_visual_word_and_specials_are_drawn_as_meant(browser: Any, real_live: Live) -> None:
    page = open_page(browser, f"{real_live.http}/text?prompt={quote(PROMPT)}&length=8&steps=8", SIZES[0])
    page.click("#generate")
    page.wait_for_selector("#notice.done", state="attached", timeout=60_000)
    page.keyboard.press("End")
    frame = page.locator("#frames .frame:not(.placeholder):not([hidden])")
    word = frame.locator(".word", has=page.locator(".tok", has_text="jo")).first
    pieces = word.locator(".tok")
    expect(pieces).to_have_count(5)  # the full stop continues the word too
    boxes = [pieces.nth(k).bounding_box() for k in range(5)]
    assert len({round(b["y"]) for b in boxes}) == 1, "the pieces share one line box"
    for left, right in itertools.pairwise(boxes):
        assert abs(right["x"] - (left["x"] + left["width"])) < 1, "no gap between the pieces of a word"
    assert "".join(pieces.nth(k).locator(".w").inner_text() for k in range(5)) == "jogging."
    # the inspector still opens on each piece
    for k, piece in enumerate(["jo", "g", "g", "ing", "."]):
        pieces.nth(k).click()
        expect(page.locator("#inspector h2")).to_contain_text(f"\u201c{piece}\u201d")
    page.keyboard.press("Escape")
    # the end of the story and the line break: drawn as what they mean, never as raw token text
    eos = frame.locator(".tok.eos")
    expect(eos).to_have_count(1)
    expect(eos.locator(".w")).to_have_text("end of story")
    after_break = frame.locator(".tok", has_text="Once").first.bounding_box()
    assert after_break["y"] > eos.bounding_box()["y"] + 5, "the text after a newline starts a new line"
    raw = page.evaluate(
        "() => window.theaterPlayer.frames"
        ".filter((f) => f.html.includes('&lt;|endoftext|&gt;') || f.html.includes('<|endoftext|>')).length"
    )
    assert raw == 0 and "<|endoftext|>" not in frame.inner_text()
    page.context.close()


def test_the_result_waits_for_the_playback_and_the_status_says_what_was_computed(browser: Any, live: Live) -> None:
    page = open_page(browser, f"{live.http}/text?length=48&steps=48", SIZES[0])
    page.click("#generate")
    page.wait_for_selector("#notice.done", state="attached")  # computed: the fakes are far faster than the playback
    assert page.evaluate("document.getElementById('run').dataset.pending") == "1"
    expect(page.locator("#notice")).to_be_hidden()
    expect(page.locator("#result")).to_be_hidden()
    expect(page.locator("#status")).to_contain_text("of 48")  # the frame shown, as the playback reaches it
    said = page.evaluate("getComputedStyle(document.getElementById('notice'), '::before').content")
    assert said.startswith('"Computed in ') and "the result shows when the playback reaches the last step" in said
    page.wait_for_selector("#notice.done", timeout=20_000)  # shown when the playback reaches the last frame
    assert page.evaluate("window.theaterPlayer.index") == len(page.evaluate("window.theaterPlayer.frames")) - 1
    assert page.evaluate("getComputedStyle(document.getElementById('notice'), '::before').content") in ("none", "normal")
    page.context.close()


def test_jumping_to_the_end_shows_the_result_at_once_and_counters_agree(browser: Any, live: Live) -> None:
    page = open_page(browser, f"{live.http}/text?length=48&steps=48", SIZES[0])
    run_to_the_end(page)
    expect(page.locator("#notice.done")).to_be_visible()
    notice = page.locator("#notice").inner_text()
    counter = page.locator("#frames .frame:not([hidden]) .ctr", has_text="ms/step").locator("b").inner_text()
    assert f"{counter} ms per step" in notice, "one figure per quantity: the last counter and the summary agree"
    page.context.close()


@pytest.mark.parametrize("size", [(1280, 800), PHONE], ids=lambda s: f"{s[0]}x{s[1]}")
def test_why_embeds_show_their_whole_content_idle_and_done(browser: Any, live: Live, size: Any) -> None:
    page = open_page(browser, f"{live.http}/why", size)
    for name in ("race", "remask"):
        iframe = page.locator(f"iframe.{name}")
        iframe.scroll_into_view_if_needed()
        frame = page.frame_locator(f"iframe.{name}")
        frame.locator("#notice.done").wait_for(state="attached", timeout=30_000)  # the demos play on their own
        frame.locator("body").press("End")
        # the iframe holds all of its content, whatever its height (the player reports it to embed.js, which grows
        # the frame), and the demo inside sizes its type by the width alone
        page.wait_for_function(
            """(name) => { const f = document.querySelector('iframe.' + name);
                           const h = f.contentDocument.body.getBoundingClientRect().height;
                           return f.getBoundingClientRect().height >= h - 2 && h > 400; }""",
            arg=name,
        )
        assert frame.locator("html.sized-by-host").count() == 1
        assert page.evaluate(f"document.querySelector('iframe.{name}').contentWindow.scrollY") == 0
    page.context.close()


def test_why_has_no_accessibility_violation_of_any_impact(browser: Any, live: Live) -> None:
    page = open_page(browser, f"{live.http}/why", SIZES[0])
    for name in ("race", "remask"):
        page.locator(f"iframe.{name}").scroll_into_view_if_needed()
        page.frame_locator(f"iframe.{name}").locator("#notice.done").wait_for(state="attached", timeout=30_000)
    result = Axe().run(page)
    assert [(v["id"], v["impact"]) for v in result.response["violations"]] == []
    page.context.close()


SMALLEST_FONT = """() => {
  let smallest = [Infinity, ''];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || el.closest('.sr, [hidden], details:not([open]) > :not(summary)')) continue;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!box.width || !box.height || style.visibility === 'hidden') continue;
    let size = parseFloat(style.fontSize);
    const m = el instanceof SVGElement ? el.getScreenCTM() : null;
    if (m) size *= Math.hypot(m.a, m.b);  // the scale of the drawing, rotated text included
    if (size < smallest[0]) smallest = [size, node.textContent.trim().slice(0, 40)];
  }
  return smallest;
}"""


@pytest.mark.parametrize(
    ("url", "size"),
    [
        ("/embed/text?result=1", SLIDE),
        ("/embed/race?result=1", SLIDE),
        ("/embed/text?result=1", PHONE),
        ("/text", PHONE),
        ("/race", PHONE),
    ],
    ids=["text-slide", "race-slide", "text-embed-phone", "text-phone", "race-phone"],
)
def test_no_text_the_audience_reads_is_under_14px(browser: Any, live: Live, url: str, size: Any) -> None:
    page = open_page(browser, f"{live.http}{url}", size)
    run_to_the_end(page)  # the finished canvas and the result, decision maps included
    expect(page.locator("#notice.done")).to_be_visible()
    size_px, text = page.evaluate(SMALLEST_FONT)
    assert size_px >= MIN_FONT_PX, f"{text!r} is {size_px:.1f} px"
    page.context.close()


def test_the_slide_embed_keeps_the_player_on_one_row(browser: Any, live: Live) -> None:
    page = open_page(browser, f"{live.http}/embed/text?result=1", SLIDE)
    run_to_the_end(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= SLIDE[0]
    tops = page.evaluate(
        "Array.from(document.querySelectorAll('#player button')).map((b) => Math.round(b.getBoundingClientRect().top))"
    )
    assert max(tops) - min(tops) <= 4, "the player's buttons sit on one row"
    heights = page.evaluate(
        "Array.from(document.querySelectorAll('#player button')).map((b) => b.getBoundingClientRect().height)"
    )
    assert max(heights) < 60, "no button label wraps"
    page.context.close()


def test_the_inspector_opens_where_it_can_be_read(browser: Any, live: Live) -> None:
    page = open_page(browser, f"{live.http}/text", SIZES[0])
    run_to_the_end(page)
    settle_scroll(page)
    chip = page.locator("#frames .frame:not([hidden]) .tok:not(.fixed)").last
    chip.click()
    expect(page.locator("#inspector")).to_be_visible()
    settle_scroll(page)
    shown = page.evaluate(
        """() => { const r = document.getElementById('inspector').getBoundingClientRect();
                   return [Math.min(r.bottom, window.innerHeight) - Math.max(r.top, 0), r.height]; }"""
    )
    assert shown[0] >= min(shown[1], 200), f"only {shown[0]:.0f} px of the {shown[1]:.0f} px panel is in view"
    assert in_viewport(page, "#frames .tok.inspected"), "the chosen chip stays in view"
    page.context.close()
