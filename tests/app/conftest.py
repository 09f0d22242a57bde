"""Fixtures the web tests share: the app over every demo's fake model, in process (`client`) and on a real socket
(`live`). A module that needs other models or settings defines its own fixture of the same name, which wins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.app.live import Live, fake_backends, live_server


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(models="fake"), loader=lambda _s: fake_backends(), use_torch=False)
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with live_server(backends=fake_backends()) as server:
        yield server
