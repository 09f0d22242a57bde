"""Served like a real site: versioned static URLs cached for a year, the rest revalidated, text compressed,
every page described."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.backends.fakes import FakeImage, FakeRace, FakeText
from app.backends.interface import Backends
from app.main import create_app
from app.settings import Settings
from app.web.static_files import file_version, static_url

PAGES = ["/", "/text", "/image", "/race", "/why", "/embed/text", "/embed/image", "/embed/race"]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(models="fake"), loader=lambda _s: Backends(FakeText(), FakeImage(), FakeRace()), use_torch=False)
    with TestClient(app) as c:
        yield c


def test_pages_link_static_files_by_content_version(client: TestClient) -> None:
    html = client.get("/text").text
    links = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert links and all(re.search(r"\?v=[0-9a-f]{12}$", link) for link in links), links
    assert static_url("player.js") in links


def test_a_versioned_url_is_cached_for_a_year_and_others_revalidate(client: TestClient) -> None:
    versioned = client.get(static_url("vendor/htmx.min.js"))
    assert versioned.status_code == 200 and versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    for url in ("/static/vendor/htmx.min.js", "/static/vendor/htmx.min.js?v=000000000000"):
        response = client.get(url)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
        assert response.headers["etag"]
    assert client.get("/static/nothing-here.js").status_code == 404
    assert file_version("player.js") != file_version("theater.css")


@pytest.mark.parametrize("path", ["/text", "/static/theater.css", "/static/player.js", "/static/vendor/htmx.min.js"])
def test_text_responses_are_compressed_for_clients_that_accept_it(client: TestClient, path: str) -> None:
    compressed = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert compressed.headers.get("content-encoding") == "gzip"
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and compressed.text == plain.text


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_a_meta_description(client: TestClient, path: str) -> None:
    description = re.search(r'<meta name="description" content="([^"]+)">', client.get(path).text)
    assert description and len(description.group(1)) > 40
