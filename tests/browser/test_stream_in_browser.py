"""What a broken stream would break, seen in a real browser: frames while computing, close codes, a new run
mid-run, the link computed again, the digit keys."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from playwright.sync_api import expect

from app.backends.fakes import FakeImage, FakeRace, FakeText
from app.backends.interface import Backends
from models.text.decoding import TextRequest
from tests.app.live import Live, exchange, live_server, run
from tests.browser.buffer import frame_attributes, frame_count, frame_texts
from tests.browser.test_player import VISIBLE, mark_done_stale, wait_for_new_done

# htmx's hx-ws would reconnect 1011, 1012 and 1013 after 500 ms (+-30%, doubling): a page that still has one
# socket this long after the close did not reconnect.
NO_RECONNECT_WAIT_MS = 1_500


def shown_step(condition: str) -> str:
    """A predicate for `page.wait_for_function` on `step`, the step of the frame shown (-1: none yet). A
    function, not an expression: the page's CSP forbids eval, and Playwright evaluates an expression with it."""
    return (
        "() => { const f = document.querySelector('#frames .frame:not([hidden]):not(.placeholder)'); "
        f"const step = f ? parseInt(f.dataset.step, 10) : -1; return {condition}; }}"
    )


@contextlib.contextmanager
def watched_page(browser: Any) -> Iterator[tuple[Any, list[Any]]]:
    """A fresh page and every websocket it opens, in order."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    try:
        yield page, sockets
    finally:
        context.close()


def wait_until(page: Any, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a Python-side condition; waiting through the page lets Playwright deliver its events meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        page.wait_for_timeout(20)


def canvases(page: Any) -> list[str | None]:
    return frame_texts(page)


def last_x0(page: Any) -> str:
    source = frame_attributes(page, "img.x0", "src")[-1]
    assert source is not None, "the last frame has no x0 image"
    return source


class CountingText(FakeText):
    """The fake text model, counting the steps it computed per seed (each test run uses its own seed)."""

    def __init__(self, step_seconds: float) -> None:
        super().__init__(step_seconds)
        self.steps_by_seed: Counter[int] = Counter()

    def sample(self, request: TextRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[Any]:
        for frame in super().sample(request, should_stop):
            if frame.step > 0:
                self.steps_by_seed[request.seed] += 1
            yield frame


class BrokenText(FakeText):
    """A model with a bug: a plain exception (not a refusal) at step 3."""

    def sample(self, request: TextRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[Any]:
        for frame in super().sample(request, should_stop):
            if frame.step == 3:
                raise RuntimeError("the fake model broke")  # a fault, deliberately not a Refused
            yield frame


# ---- frames stream in while the run computes ------------------------------------------------------------


def test_an_intermediate_text_step_shows_while_the_run_still_computes(browser: Any) -> None:
    with live_server(step_seconds=0.2) as slow, watched_page(browser) as (page, _sockets):
        page.goto(f"{slow.http}/text?length=20&steps=20&seed=1")  # 20 steps of 0.2 s: 4 s to compute
        page.click("#generate")
        # At one moment: a frame strictly between the first and the last is shown and the run is not done yet.
        page.wait_for_function(
            """() => {
            const shown = document.querySelector('#frames .frame:not([hidden]):not(.placeholder)');
            const step = shown ? parseInt(shown.dataset.step, 10) : -1;
            const total = shown ? parseInt(shown.dataset.total, 10) : -1;
            return total === 20 && step >= 1 && step <= total - 1 && !document.querySelector('#notice.done');
        }""",
            timeout=10_000,
        )
        page.wait_for_selector("#notice.done", timeout=20_000)
        assert frame_count(page) == 21


# ---- close codes: a notice, no reconnect ----------------------------------------------------------------


def assert_notice_without_reconnect(page: Any, sockets: list[Any], text: re.Pattern[str]) -> None:
    notice = page.locator("#notice")
    expect(notice).to_have_class(re.compile(r"\berror\b"), timeout=10_000)
    expect(notice).to_have_text(text)
    expect(notice).to_have_attribute("role", "alert")
    page.wait_for_timeout(NO_RECONNECT_WAIT_MS)
    assert len(sockets) == 1, [s.url for s in sockets]
    assert sockets[0].is_closed()
    expect(notice).to_have_text(text)  # still the same notice: nothing replaced it


def test_busy_1013_shows_busy_and_does_not_reconnect(browser: Any) -> None:
    with live_server(step_seconds=0.1, max_running=1, max_queue=0) as live:
        # A long run from another client holds the only slot (stopped with the server at the end).
        holder = threading.Thread(target=lambda: run(exchange(live.ws("text"), {"length": 100, "steps": 100})))
        holder.start()
        try:
            with watched_page(browser) as (page, sockets):
                page.goto(f"{live.http}/text?length=8&steps=4&seed=2")
                wait_until(page, lambda: live.engine.running == 1)
                page.click("#generate")
                assert_notice_without_reconnect(page, sockets, re.compile(r"busy.*try again", re.IGNORECASE))
                assert live.engine.jobs_started == 1  # the page's request never started a job
        finally:
            live.server.should_exit = True
            holder.join(10)


def test_server_fault_1011_shows_the_failure_and_does_not_reconnect(browser: Any) -> None:
    broken = BrokenText(step_seconds=0.05)
    with (
        live_server(backends=Backends(text=broken, image=FakeImage(), race=FakeRace())) as live,
        watched_page(browser) as (page, sockets),
    ):
        page.goto(f"{live.http}/text?length=8&steps=8&seed=3")
        page.click("#generate")
        assert_notice_without_reconnect(page, sockets, re.compile(r"failed on the server.*try again"))
        assert broken.calls == 1  # no second attempt, from the page or from htmx
        assert frame_count(page) == 3  # steps 0-2 came before the fault


def test_restart_1012_mid_run_shows_restarting_and_does_not_reconnect(browser: Any) -> None:
    with live_server(step_seconds=0.2) as live, watched_page(browser) as (page, sockets):
        page.goto(f"{live.http}/text?length=40&steps=40&seed=4")
        page.click("#generate")
        page.wait_for_function(shown_step("step >= 1"), timeout=10_000)
        live.server.should_exit = True  # uvicorn's shutdown closes open sockets with 1012 (as on SIGTERM)
        assert_notice_without_reconnect(page, sockets, re.compile(r"restarting.*try again", re.IGNORECASE))
        expect(page.locator("#notice.done")).to_have_count(0)


# ---- a new run mid-run ----------------------------------------------------------------------------------


def test_generate_mid_run_closes_the_old_socket_stops_its_job_and_runs_the_new_one(browser: Any) -> None:
    text = CountingText(step_seconds=0.1)
    backends = Backends(text=text, image=FakeImage(), race=FakeRace())
    with live_server(backends=backends, max_running=2) as live, watched_page(browser) as (page, sockets):
        page.goto(f"{live.http}/text?length=30&steps=30&seed=1")  # 30 steps of 0.1 s
        page.click("#generate")
        page.wait_for_function(shown_step("step >= 3 && !document.querySelector('#notice.done')"), timeout=10_000)
        page.fill("input[name=seed]", "2")
        mark_done_stale(page)
        page.click("#generate")
        steps_at_press = text.steps_by_seed[1]
        assert steps_at_press < 30
        wait_until(page, lambda: len(sockets) == 2 and sockets[0].is_closed())
        wait_for_new_done(page, timeout=15_000)
        assert "seed=2" in page.url
        assert text.steps_by_seed[2] == 30  # the new run completed...
        # ...and the old job stopped within a step or two of its socket closing. Left running (two slots), it
        # would have computed all 30 steps by now: it started before the new one, at the same pace.
        wait_until(page, lambda: live.engine.running == 0)
        assert text.steps_by_seed[1] <= steps_at_press + 5, (steps_at_press, text.steps_by_seed[1])
        assert text.calls == 2 and live.engine.jobs_started == 2
        assert frame_count(page) == 31  # only the new run's frames
        assert page.locator("#notice.error").count() == 0


# ---- the link reproduces the run, computed again --------------------------------------------------------


def test_the_link_reproduces_the_run_computed_again_with_the_cache_off(browser: Any) -> None:
    with live_server(cache_bytes=0) as live, watched_page(browser) as (page, _sockets):
        page.goto(f"{live.http}/text?length=6&steps=3&seed=1")
        page.fill("input[name=seed]", "99")
        page.dispatch_event("input[name=seed]", "change")
        page.click("#generate")
        page.wait_for_selector("#notice.done")
        first = canvases(page)
        assert live.text.calls == 1 and len(first) == 4

        page.goto(page.url)  # the same link...
        assert "seed=99" in page.url and page.input_value("input[name=seed]") == "99"
        page.click("#generate")
        page.wait_for_selector("#notice.done")
        assert canvases(page) == first  # ...the same frames...
        assert live.text.calls == 2 and live.engine.cache_hits == 0  # ...computed again, not replayed

        mark_done_stale(page)
        page.fill("input[name=seed]", "98")  # and the frames do depend on the link: another seed, other frames
        page.click("#generate")
        wait_for_new_done(page)
        other = canvases(page)
        assert live.text.calls == 3 and len(other) == 4 and other[-1] != first[-1]


# ---- the digit keys -------------------------------------------------------------------------------------


def test_a_digit_key_on_the_image_page_starts_a_new_run_and_the_image_changes(browser: Any, live: Live) -> None:
    with watched_page(browser) as (page, sockets):
        page.goto(f"{live.http}/image?steps=10&seed=4&sampler=ddpm&digit=3")
        page.click("#generate")
        page.wait_for_selector("#notice.done")
        before, calls = last_x0(page), live.image.calls
        mark_done_stale(page)
        page.keyboard.press("7")
        page.wait_for_url(re.compile(r"digit=7"))
        wait_for_new_done(page)
        assert live.image.calls == calls + 1 and len(sockets) == 2  # a new run, computed
        after = last_x0(page)
        assert after.startswith("data:image/png") and after != before  # a different digit, a different image
        page.keyboard.press("End")
        assert page.locator(f"{VISIBLE} img.x0").get_attribute("src") == after
