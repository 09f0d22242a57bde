"""/replay in a real browser: a trace downloaded from /export plays frame for frame as the live run did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.app.live import Live
from tests.browser.buffer import frame_attributes, frame_count, frame_html
from tests.browser.test_player import VISIBLE, scrub_to, status_starts


def open_trace(page: Any, live: Live, data: bytes, name: str = "t.json") -> list[str]:
    """Open /replay, give it the file, wait for the run to finish; every URL the page asked for."""
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{live.http}/replay")
    page.set_input_files("#trace-file", files=[{"name": name, "mimeType": "application/json", "buffer": data}])
    return requested


def test_a_text_trace_replays_frame_for_frame_as_the_live_run(page: Any, live: Live, artifacts: Path) -> None:
    query = "length=16&steps=8&seed=3&remask=cap"
    page.goto(f"{live.http}/text?{query}")
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    live_frames = frame_html(page)
    live_notice = page.locator("#notice").text_content()
    live_map = page.locator("#result .decision-map svg").get_attribute("aria-label")
    assert len(live_frames) == 9

    response = page.request.get(f"{live.http}/export/text.json?{query}")
    assert response.ok and response.headers["content-disposition"] == 'attachment; filename="theater-text-seed3.json"'
    data = response.body()
    assert json.loads(data)["format"] == "diffusion-theater-trace"

    requested = open_trace(page, live, data)
    page.wait_for_selector("#notice.done")
    assert frame_html(page) == live_frames
    assert page.locator("#notice").text_content() == live_notice
    expect(page.locator("#result .decision-map")).to_have_count(1)
    assert page.locator("#result .decision-map svg").get_attribute("aria-label") == live_map
    status_starts(page, "step 8 of 8")  # it plays on its own, to the end
    expect(page.locator("#trace-info")).to_be_visible()
    assert page.locator("#trace-models li").first.text_content().startswith("fake-text")
    assert page.locator("#trace-live").get_attribute("href") == f"/text?{json.loads(data)['query']}"
    page.screenshot(path=str(artifacts / "replay-text.png"), full_page=True)

    scrub_to(page, 0)  # the player scrubs the replayed frames as it does live ones
    status_starts(page, "step 0 of 8")
    assert page.locator(f"{VISIBLE} .tok.blank").count() == 16
    page.keyboard.press("ArrowRight")
    status_starts(page, "step 1 of 8")
    page.keyboard.press("End")
    status_starts(page, "step 8 of 8")
    line = page.locator("#result .decision-map line.now")
    bottom = float(line.get_attribute("y1"))
    scrub_to(page, 3)  # and the decision map follows
    assert float(line.get_attribute("y1")) < bottom
    # Nothing but the page and its static files: no socket, no export, no model.
    assert all(url == f"{live.http}/replay" or url.startswith(f"{live.http}/static/") for url in requested), requested
    assert page.console_errors == []


def test_a_race_trace_replays_with_both_lanes(page: Any, live: Live) -> None:
    response = page.request.get(f"{live.http}/export/race.json?prompt=Once+upon+a+time&length=12&steps=4&seed=2")
    assert response.ok
    open_trace(page, live, response.body(), "race.json")
    page.wait_for_selector("#notice.done")
    assert frame_count(page) == 13
    status_starts(page, "pass 12 of 12")
    assert page.locator(f"{VISIBLE} .lane").count() == 2
    assert page.locator(f"{VISIBLE} .lane.finished").count() == 2
    expect(page.locator("#result .decision-map")).to_have_count(2)
    assert page.locator("#trace-models li").count() == 2
    scrub_to(page, 2)
    status_starts(page, "pass 2 of 12")
    assert page.console_errors == []


def test_an_image_trace_replays(page: Any, live: Live) -> None:
    response = page.request.get(f"{live.http}/export/image.json?steps=6&seed=4&sampler=ddpm")
    open_trace(page, live, response.body(), "image.json")
    page.wait_for_selector("#notice.done")
    assert frame_count(page) == 7
    status_starts(page, "step 6 of 6")
    assert page.locator(f"{VISIBLE} img.px").count() == 2


def test_a_wrong_file_says_what_is_wrong(page: Any, live: Live) -> None:
    cases = [
        (b"not json at all", "is not a trace: it is not JSON"),
        (b'{"hello": 1}', 'is not a Diffusion Theater trace: it has no "format": "diffusion-theater-trace"'),
        (
            json.dumps({"format": "diffusion-theater-trace", "version": 2, "kind": "text", "messages": []}).encode(),
            "is a trace of version 2; this page plays version 1",
        ),
        (
            json.dumps({"format": "diffusion-theater-trace", "version": 1, "kind": "text", "messages": []}).encode(),
            "has no frames to play",
        ),
    ]
    page.goto(f"{live.http}/replay")
    for data, words in cases:
        page.set_input_files("#trace-file", files=[{"name": "wrong.json", "mimeType": "application/json", "buffer": data}])
        expect(page.locator("#notice.error")).to_contain_text("wrong.json " + words)
        assert frame_count(page) == 0
        expect(page.locator("#trace-info")).to_be_hidden()
    assert page.locator("h1").count() == 1
    assert page.console_errors == []


def test_the_html_in_a_trace_cannot_make_the_page_fetch(page: Any, live: Live) -> None:
    """A trace is a file from anywhere: htmx does not process its HTML (`hx-ignore` on #run), so an `hx-get` in
    it asks nothing of the server (and the CSP already refuses inline script)."""
    trace = json.loads(page.request.get(f"{live.http}/export/text.json?length=4&steps=2&seed=8").body())
    frame = trace["messages"][0]
    frame["content"] = frame["content"].replace("<article ", '<article hx-get="/export/text.gif?steps=3" hx-trigger="load" ', 1)
    requested = open_trace(page, live, json.dumps(trace).encode())
    page.wait_for_selector("#notice.done")
    page.wait_for_timeout(300)
    assert sum(1 for v in frame_attributes(page, ".frame", "hx-get") if v) == 1
    assert not [url for url in requested if "/export/" in url], requested
