"""The pages in a real browser: htmx opens the socket, frames stream in, the player plays and scrubs."""

from __future__ import annotations

import contextlib
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.app.live import Live
from tests.browser.buffer import frame_attributes, frame_count, frame_texts

VISIBLE = "#frames .frame:not([hidden])"


def status_starts(page: Any, text: str) -> None:
    # Locator assertions run in Playwright's own world: the page's CSP (no eval) stays in force.
    expect(page.locator("#status")).to_have_text(re.compile("^" + re.escape(text)), timeout=10_000)


def mark_done_stale(page: Any) -> None:
    """Mark the notice now shown, so that `wait_for_new_done` waits for the next run's. Not with a class or an
    attribute: when a new run's section replaces the old, htmx's settle step gives the new notice the old
    one's attributes (class `done` included) for a moment, so `#notice.done` can match a run that has not
    finished, or even started. A JS property stays with the old element."""
    page.eval_on_selector("#notice", "el => { el.theaterStale = true; }")


def wait_for_new_done(page: Any, timeout: float = 10_000) -> None:
    page.wait_for_function(
        """() => {
        const notice = document.getElementById('notice');
        return !!notice && !notice.theaterStale && notice.classList.contains('done')
            && notice.textContent.trim().startsWith('Done');
    }""",
        timeout=timeout,
    )


def visible_step(page: Any) -> int:
    return int(page.locator(VISIBLE).get_attribute("data-step"))


def scrub_to(page: Any, value: int) -> None:
    page.eval_on_selector(
        "#scrub", "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true})); }", value
    )


def test_text_page_plays_blanks_into_tokens_and_scrubs_back(page: Any, live: Live, artifacts: Path) -> None:
    page.goto(f"{live.http}/text?length=16&steps=8&seed=3")
    assert page.locator(".placeholder .tok.blank").count() == 16
    calls = live.text.calls
    page.keyboard.press("Space")  # nothing buffered yet: Space generates, then plays
    page.wait_for_selector("#notice.done")
    assert live.text.calls == calls + 1 and len(page.sockets) == 1
    status_starts(page, "step 8 of 8")
    assert frame_count(page) == 9
    assert page.locator(f"{VISIBLE} .tok.blank").count() == 0
    assert page.locator(f"{VISIBLE} .tok:not(.fixed):not(.blank)").count() == 16
    assert page.locator("#status").text_content() == "step 8 of 8, 16 of 16 tokens decided"
    page.screenshot(path=str(artifacts / "text-done.png"), full_page=True)

    scrub_to(page, 0)
    assert visible_step(page) == 0 and page.locator(f"{VISIBLE} .tok.blank").count() == 16
    page.keyboard.press("ArrowRight")
    assert visible_step(page) == 1 and page.locator(f"{VISIBLE} .tok.new").count() >= 1
    page.keyboard.press("End")
    assert visible_step(page) == 8
    page.keyboard.press("ArrowLeft")
    assert visible_step(page) == 7
    page.keyboard.press("Home")
    assert visible_step(page) == 0 and "step 0 of 8" in page.locator("#status").text_content()
    page.screenshot(path=str(artifacts / "text-step0.png"), full_page=True)
    page.keyboard.press("Space")  # play again from the buffer, no new request
    expect(page.locator("#play")).to_have_text("Pause")  # it plays...
    status_starts(page, "step 8 of 8")
    expect(page.locator("#play")).to_have_text("Play")  # ...to the end
    assert live.text.calls == calls + 1 and len(page.sockets) == 1  # no new socket, no new run, not even a replay
    assert frame_count(page) == 9 and page.console_errors == []


def test_controls_write_the_url_and_the_same_link_replays_from_the_cache(page: Any, live: Live) -> None:
    # The same link computed again (cache off) is test_stream_in_browser's; here the cache answers it.
    page.goto(f"{live.http}/text?length=6&steps=3&seed=1")
    page.fill("input[name=seed]", "99")
    page.dispatch_event("input[name=seed]", "change")
    assert "seed=99" in page.url and "length=6" in page.url
    calls, hits = live.text.calls, live.engine.cache_hits
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    first = frame_texts(page)
    assert live.text.calls == calls + 1 and live.engine.cache_hits == hits  # computed
    page.goto(page.url)  # the same link...
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    again = frame_texts(page)
    assert first == again and len(first) == 4  # ...the same frames...
    assert live.text.calls == calls + 1 and live.engine.cache_hits == hits + 1  # ...replayed, not computed


def test_image_page_changes_across_frames(page: Any, live: Live, artifacts: Path) -> None:
    page.goto(f"{live.http}/image?steps=10&seed=4&sampler=ddpm")
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    sources = frame_attributes(page, "img.xt", "src")
    assert len(sources) == 11 and len(set(sources)) > 5 and all(s and s.startswith("data:image/png") for s in sources)
    status_starts(page, "step 10 of 10")
    assert page.locator(f"{VISIBLE} svg.schedule circle.dot").count() == 1
    rendering = page.eval_on_selector(f"{VISIBLE} img.xt", "el => getComputedStyle(el).imageRendering")
    assert rendering in ("pixelated", "crisp-edges")
    page.screenshot(path=str(artifacts / "image-done.png"), full_page=True)
    scrub_to(page, 0)
    assert page.locator(f"{VISIBLE} img.xt").get_attribute("src") == sources[0]
    final, calls = sources[-1], live.image.calls
    mark_done_stale(page)
    page.keyboard.press("7")  # digit keys pick a digit (the link had the default, 3) and generate
    page.wait_for_url(re.compile(r"digit=7"))
    wait_for_new_done(page)
    assert live.image.calls == calls + 1  # a new run...
    again = frame_attributes(page, "img.xt", "src")
    assert len(again) == 11 and again[-1] != final  # ...of another digit: another image
    assert page.console_errors == []


@contextlib.contextmanager
def host_page(html: str) -> Iterator[str]:
    """A different origin (another port) that embeds us, served for real: Chromium's local-network checks
    refuse a loopback iframe inside a page it cannot place on the local network."""
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def embedding_host(src: str, width: int) -> str:
    """A slide page that embeds `src` 150 px tall, records every height the demo posts and applies it."""
    return f"""<!doctype html><html><body><h1>slides</h1>
    <iframe id="demo" src="{src}" width="{width}" height="150"></iframe>
    <script>
      window.heights = [];
      addEventListener("message", (e) => {{
        if (e.data && e.data.type === "theater:height") {{
          window.heights.push(e.data.height);
          document.getElementById("demo").height = e.data.height;
        }}
      }});
    </script></body></html>"""


def test_embed_posts_its_height_to_the_parent(page: Any, live: Live, artifacts: Path) -> None:
    with host_page(embedding_host(f"{live.http}/embed/text?length=8&steps=4&autoplay=1", width=800)) as url:
        page.goto(url)
        page.wait_for_function("window.heights.length > 0 && window.heights[window.heights.length - 1] > 100")
        frame = page.frame_locator("#demo")
        frame.locator("#notice.done").wait_for()
        expect(frame.locator("#status")).to_have_text(re.compile("^step 4 of 4"))
        assert frame.locator("header.top").count() == 0
        page.screenshot(path=str(artifacts / "embed-text.png"), full_page=True)


def test_reduced_motion_autoplay_shows_the_result_without_animating(browser: Any, live: Live) -> None:
    context = browser.new_context(reduced_motion="reduce")
    page = context.new_page()
    page.goto(f"{live.http}/text?length=5&steps=5&seed=8&autoplay=1")
    page.wait_for_selector("#notice.done")
    status_starts(page, "step 5 of 5")
    assert page.locator("#play").text_content() == "Play"
    animation = page.eval_on_selector(f"{VISIBLE} .tok.new", "el => getComputedStyle(el).animationName")
    assert animation == "none"
    context.close()
