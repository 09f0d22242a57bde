"""Every demo of the registry exports its run: the JSON trace and the GIF, over HTTP, through the engine (a run
the socket computed replays from the cache: the export is the run the page showed)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from PIL import Image, ImageSequence

from app.demos.registry import DEMOS
from app.export.gif import HOLD_LAST_MS, MAX_GIF_FRAMES
from app.web.query import to_query
from tests.app.live import Live, exchange, fake_backends, live_server, run

# A small run of each demo (the registry's request types with a few fields set), and the frames it has.
SMALL = {
    "text": {"length": 8, "steps": 4, "seed": 1},
    "race": {"length": 8, "steps": 4, "seed": 1},
    "image": {"digit": 3, "steps": 4, "seed": 1},
    "image/grid": {"digit": 3, "steps": 4, "seed": 1},
    "image/samplers": {"digit": 2, "ddpm_steps": 6, "ddim_steps": 3, "dpm_steps": 2, "seed": 1},
    "race/image": {"digit": 7, "steps": 5, "seed": 1},
    "train": {"seconds": 60, "seed": 1},  # the fakes train `LiveTwins.small()`: 4 points, bounded by steps
}


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with live_server(backends=fake_backends()) as server:
        yield server


def test_every_demo_has_a_small_run_here() -> None:
    assert set(SMALL) == set(DEMOS)  # a new demo gets its row: it exports like the others


@pytest.mark.parametrize("kind", list(DEMOS))
def test_the_trace_is_the_run_the_socket_sent(live: Live, kind: str) -> None:
    request = DEMOS[kind].request(**SMALL[kind])
    messages = run(exchange(live.ws(kind, fmt="html"), request.model_dump_json())).messages  # html: as the page gets them
    assert messages[-1]["type"] == "done"
    query = urlencode(to_query(request))
    response = httpx.get(f"{live.http}/export/{kind}.json?{query}", timeout=60)
    assert response.status_code == 200, response.text
    trace = json.loads(response.content)
    assert trace["kind"] == kind and trace["request"] == dict(sorted(request.model_dump(mode="json").items()))
    assert trace["query"] == query and trace["models"] and all("sha256" in m for m in trace["models"])
    assert trace["messages"] == messages  # every message as the socket sent it, in order
    name = f"theater-{kind.replace('/', '-')}-seed1.json"
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'


@pytest.mark.parametrize("kind", list(DEMOS))
def test_the_gif_has_one_frame_per_step_and_holds_the_last(live: Live, kind: str) -> None:
    request = DEMOS[kind].request(**SMALL[kind])
    frames = run(exchange(live.ws(kind), request.model_dump_json())).frames
    response = httpx.get(f"{live.http}/export/{kind}.gif?{urlencode(to_query(request))}&speed=2", timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    gif = Image.open(io.BytesIO(response.content))
    durations = [image.info["duration"] for image in ImageSequence.Iterator(gif)]
    assert len(durations) == min(len(frames), MAX_GIF_FRAMES) and durations[-1] == HOLD_LAST_MS
    assert set(durations[:-1]) == {60}  # 1000 / (8 frames a second x 2), to the GIF's 10 ms
    pictures = [image.convert("RGB") for image in ImageSequence.Iterator(gif)]
    assert len({p.size for p in pictures}) == 1 and pictures[0].tobytes() != pictures[-1].tobytes()  # the run moves


def test_an_unknown_export_names_every_demo(live: Live) -> None:
    response = httpx.get(f"{live.http}/export/nope.gif", timeout=10)
    assert response.status_code == 404 and all(kind in response.text for kind in DEMOS)
    response = httpx.get(f"{live.http}/export/race/image.png", timeout=10)
    assert response.status_code == 404
