"""Playwright (sync API) driving Debian's Chromium against a real uvicorn. Never `playwright install`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from app.settings import REPO_ROOT
from tests.app.live import Live, live_server
from tests.ci import skip_unless_ci

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ARTIFACTS = REPO_ROOT / "test-artifacts"
HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser is marked `browser` (`make test-fast` deselects them). The hook sees the whole
    session's items, hence the path check."""
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        skip_unless_ci("Debian chromium is not installed (make chromium)")  # in CI: fail, never a green run without it
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with live_server(step_seconds=0.01) as server:
        yield server


@pytest.fixture
def page(browser: Browser) -> Iterator[Any]:
    """A Page with two attributes of ours, which Playwright's types do not know (hence Any): `console_errors`,
    every console error and uncaught exception, and `sockets`, every websocket the page opened, in order."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page: Any = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    page.sockets = []
    page.on("websocket", lambda ws: page.sockets.append(ws))
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
