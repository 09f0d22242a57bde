"""Pages: headers, no external URLs, no inline script, URL state round trip, the UNTRAINED banner."""

from __future__ import annotations

import hashlib
import json
import mmap
import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.backends.fakes import FakeImage, FakeRace, FakeText
from app.backends.interface import Backends
from app.main import create_app
from app.settings import REPO_ROOT, Settings
from tests.app.live import app_of

PAGES = [
    "/",
    "/text",
    "/image",
    "/race",
    "/race/image",
    "/embed/text",
    "/embed/image",
    "/embed/race",
    "/embed/race/image",
    "/text/run",
    "/image/run",
    "/race/run",
    "/race/image/run",
]


def client_for(settings: Settings | None = None, trained: bool = False, address: str = "testclient") -> TestClient:
    text, image, race = FakeText(), FakeImage(), FakeRace()
    text.trained = image.trained = race.trained = trained
    race.untrained = [] if trained else race.untrained
    app = create_app(settings or Settings(models="fake"), loader=lambda _s: Backends(text, image, race), use_torch=False)
    return TestClient(app, client=(address, 50000))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with client_for() as c:
        yield c


class Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.handlers: list[str] = []
        self.styles = 0
        self.attrs: dict[str, dict[str, str | None]] = {}
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name in ("src", "href", "action", "hx-get", "hx-ws:connect", "poster", "data") and value:
                self.urls.append(value)
            if name.startswith("on"):
                self.handlers.append(name)
            if name == "style":
                self.styles += 1
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1
        if values.get("id"):
            self.attrs[str(values["id"])] = values
        if tag == "style":
            self.styles += 1


def scan(html: str) -> Scan:
    parser = Scan()
    parser.feed(html)
    return parser


def external(url: str) -> bool:
    return bool(re.match(r"^\s*(https?:|wss?:|//|ftp:)", url, re.I))


@pytest.mark.parametrize("path", PAGES)
def test_pages_reference_nothing_external_and_run_no_inline_code(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    found = scan(response.text)
    assert not [u for u in found.urls if external(u)]
    assert found.inline_scripts == 0 and found.handlers == [] and found.styles == 0


def test_static_assets_reference_nothing_external() -> None:
    css = (REPO_ROOT / "static" / "theater.css").read_text()
    assert not [u for u in re.findall(r"url\(([^)]*)\)", css) if external(u.strip("'\""))]
    assert "@import" not in css
    player = (REPO_ROOT / "static" / "player.js").read_text()
    assert not re.search(r"https?://", player)


def test_security_headers(client: TestClient) -> None:
    for path in ("/", "/text", "/static/player.js", "/healthz"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors *" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_frame_ancestors_comes_from_settings() -> None:
    with client_for(Settings(models="fake", frame_ancestors="'self' https://slides.example.org")) as c:
        csp = c.get("/embed/text").headers["content-security-policy"]
        assert "frame-ancestors 'self' https://slides.example.org" in csp


def test_form_state_round_trips_through_the_url(client: TestClient) -> None:
    found = scan(client.get("/image?digit=none&guidance=2.5&sampler=dpm&steps=7&seed=42").text)
    html = client.get("/image?digit=none&guidance=2.5&sampler=dpm&steps=7&seed=42").text
    assert re.search(r'<option value="none" selected>', html) and re.search(r'<option value="dpm" selected>', html)
    assert 'name="steps" min="1" max="1000" value="7"' in html and 'name="seed" min="0" max="4294967295" value="42"' in html
    assert 'name="guidance" min="0" max="10" step="0.5" value="2.5"' in html
    assert found.attrs["embed-link"]["href"] == "/embed/image?digit=none&guidance=2.5&sampler=dpm&steps=7&seed=42&autoplay=1"
    fragment = scan(client.get("/image/run?digit=none&guidance=2.5&sampler=dpm&steps=7&seed=42").text)
    run = fragment.attrs["run"]
    assert run["hx-ws:connect"] == "/ws/image" and run["hx-target"] == "#frames"
    sender = re.search(r"hx-vals='([^']*)'", client.get("/image/run?digit=none&steps=7&seed=42").text)
    assert sender is not None
    assert json.loads(sender.group(1).replace("&#34;", '"')) == {
        "digit": None,
        "guidance": 1.0,
        "sampler": "ddim",
        "steps": 7,
        "seed": 42,
    }


def test_text_page_settings_and_prompt_escaping(client: TestClient) -> None:
    html = client.get("/text", params={"prompt": "<b>hi</b> 'there'", "length": "5", "strategy": "random"}).text
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "<b>hi</b>" not in html
    assert '<option value="random" selected>' in html
    assert html.count('class="tok blank sp"') == 5  # the idle canvas shows the blanks to come
    run = client.get("/text/run", params={"prompt": "it's", "length": "3"}).text
    assert "hx-vals='{&#34;prompt&#34;:&#34;it&#39;s&#34;" in run


def test_invalid_query_values_fall_back_with_a_visible_note(client: TestClient) -> None:
    response = client.get("/text?steps=lots&length=100000")
    assert response.status_code == 200
    assert "ignored steps=" in response.text and "length 100000 is over the limit" in response.text


def test_autoplay_renders_an_active_run(client: TestClient) -> None:
    assert 'hx-ws:connect="/ws/text"' in client.get("/embed/text?autoplay=1").text
    assert "hx-ws:connect" not in client.get("/embed/text").text
    embed = client.get("/embed/image").text
    assert '<header class="top">' not in embed and 'class="embed page-image"' in embed


def test_untrained_banner_is_loud_and_goes_away_when_trained(client: TestClient) -> None:
    for path in ("/", "/text", "/image", "/embed/text"):
        assert "<strong>UNTRAINED</strong>" in client.get(path).text
    with client_for(trained=True) as trained:
        assert "UNTRAINED" not in trained.get("/text").text


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["models"] == {"text": "fake-text", "image": "fake-image", "race": "fake-race"}


def test_unknown_fragment_is_404(client: TestClient) -> None:
    assert client.get("/audio/run").status_code == 404


def test_vendored_htmx_matches_its_checksums() -> None:
    vendor = Path(REPO_ROOT / "static" / "vendor")
    lines = (vendor / "SHA256SUMS").read_text().split("\n")
    names = set()
    for line in filter(None, lines):
        digest, name = line.split()
        names.add(name)
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest
    assert names == {"htmx.min.js", "hx-ws.js", "LICENSE"}
    assert "4.0.1" in (vendor / "VERSION").read_text()


def vm_rss_bytes() -> int:
    """This process's resident memory as the kernel reports it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line in /proc/self/status")


def test_stats_reports_threads_memory_and_loop_lag(client: TestClient) -> None:
    # The TestClient serves the app in this process: /stats must report this process's own numbers, and
    # follow them when they change.
    body = client.get("/stats").json()
    assert abs(body["threads"] - threading.active_count()) <= 1  # +-1: a worker thread may come or go meanwhile
    assert abs(body["rss_bytes"] - vm_rss_bytes()) <= 16 << 20
    release = threading.Event()
    parked = [threading.Thread(target=release.wait, daemon=True) for _ in range(5)]
    for thread in parked:
        thread.start()
    # 64 MiB of fresh anonymous pages, each written: resident. (Not a bytes object: malloc may hand back memory
    # that earlier tests freed and that is still resident, and then the RSS does not grow.)
    ballast = mmap.mmap(-1, 64 << 20)
    for offset in range(0, len(ballast), mmap.PAGESIZE):
        ballast[offset] = 1
    try:
        grown = client.get("/stats").json()
    finally:
        release.set()
        for thread in parked:
            thread.join(5)
    assert grown["threads"] - body["threads"] in (4, 5, 6)  # the five parked threads, +-1 as above
    assert grown["rss_bytes"] - body["rss_bytes"] >= 56 << 20  # the ballast (other memory may be released meanwhile)
    assert abs(grown["rss_bytes"] - vm_rss_bytes()) <= 16 << 20
    ballast.close()
    assert set(body["loop_lag"]) == {"p50_ms", "p99_ms", "max_ms", "samples"}
    assert body["engine"]["running"] == 0


def test_stats_reset_only_from_loopback_unless_allowed() -> None:
    with client_for() as visitor:  # TestClient's default peer is not a loopback address
        app_of(visitor).state.loop_lag.samples.append(12345.0)
        assert visitor.get("/stats?reset=1").status_code == 403
        assert 12345.0 in app_of(visitor).state.loop_lag.samples
        assert visitor.get("/stats").status_code == 200  # reading stays open
    for address in ("127.0.0.1", "::1"):
        with client_for(address=address) as local:
            app_of(local).state.loop_lag.samples.append(12345.0)  # a sentinel no real lag sample equals
            assert local.get("/stats?reset=1").status_code == 200
            assert 12345.0 not in app_of(local).state.loop_lag.samples
    with client_for(Settings(models="fake", stats_reset_from_anywhere=True)) as visitor:
        assert visitor.get("/stats?reset=1").status_code == 200


def test_readyz_is_503_once_draining() -> None:
    import signal

    from app.__main__ import TheaterServer, server_config

    with client_for() as c:
        assert c.get("/readyz").status_code == 200
        server = TheaterServer(server_config(app_of(c), app_of(c).state.settings, log_level="warning"))
        server.handle_exit(signal.SIGTERM, None)  # what uvicorn calls from its signal handler
        assert server.should_exit
        response = c.get("/readyz")
        assert response.status_code == 503 and response.json() == {"status": "draining"}
        assert c.get("/healthz").status_code == 200  # still alive while it drains


def test_an_over_limit_url_value_drops_only_that_field_and_says_so(client: TestClient) -> None:
    body = client.get("/text?prompt=hi&seed=5&length=300").text
    assert 'maxlength="400">hi</textarea>' in body
    assert 'name="seed" min="0" max="4294967295" value="5"' in body
    assert 'class="note"' in body and "ignored length=&#39;300&#39;" in body and "using 64" in body
