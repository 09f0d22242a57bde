"""Every demo's trace replays in the browser as its live run played: the grid, the samplers side by side and the
image race (which gained their exports through the registry), like text and race (tests/browser/test_replay.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.app.live import Live
from tests.browser.buffer import frame_html
from tests.browser.test_replay import open_trace

# Small runs of each demo: (kind, query, the frames a run of it has).
RUNS = [
    ("image/grid", "digit=3&steps=4&seed=1&sampler=ddim", 5),
    ("image/samplers", "digit=2&ddpm_steps=6&ddim_steps=3&dpm_steps=2&seed=4", None),
    ("race/image", "digit=7&steps=5&seed=2", None),
    ("train", "preset=stories-10k&text=&seconds=3&seed=2", None),  # the live twins: a 3-second budget
]


@pytest.mark.parametrize(("kind", "query", "frames"), RUNS, ids=[kind for kind, _, _ in RUNS])
def test_the_replayed_canvases_equal_the_live_ones(page: Any, live: Live, kind: str, query: str, frames: int | None) -> None:
    page.goto(f"{live.http}/{kind}?{query}")
    page.click("#generate")
    page.wait_for_selector("#notice.done")
    live_frames = frame_html(page)
    live_notice = page.locator("#notice").text_content()
    live_result = page.locator("#result").inner_html()
    if frames is not None:
        assert len(live_frames) == frames
    assert len(live_frames) > 1

    # the page offers the run's exports, and the trace is the run the page showed
    href = page.locator("#export-trace").get_attribute("href") or ""
    assert href.startswith(f"/export/{kind}.json?") and all(
        f"&{pair}&" in f"&{href.split('?', 1)[1]}&" for pair in query.split("&")
    )
    gif = page.locator("#export-gif").get_attribute("href") or ""
    assert gif.startswith(f"/export/{kind}.gif?") and gif.endswith("&speed=1")
    response = page.request.get(f"{live.http}/export/{kind}.json?{query}")
    assert response.ok, response.text()
    data = response.body()
    trace = json.loads(data)
    assert trace["kind"] == kind and trace["models"]
    assert (
        response.headers["content-disposition"]
        == f'attachment; filename="theater-{kind.replace("/", "-")}-seed{trace["request"]["seed"]}.json"'
    )

    requested = open_trace(page, live, data, "run.json")
    page.wait_for_selector("#notice.done")
    assert frame_html(page) == live_frames  # frame for frame, byte for byte
    assert page.locator("#notice").text_content() == live_notice
    assert page.locator("#result").inner_html() == live_result
    assert page.locator("#trace-kind").text_content() == page.evaluate(
        "(kind) => JSON.parse(document.getElementById('theater').dataset.demos)[kind]", kind
    )
    assert page.locator("#trace-live").get_attribute("href") == f"/{kind}?{trace['query']}"
    assert all(url == f"{live.http}/replay" or url.startswith(f"{live.http}/static/") for url in requested), requested
    assert page.console_errors == []
