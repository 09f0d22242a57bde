"""/train through the web layer: a run streams both models' points and ends with the measured summary; every limit
of a request at its edge with the field named; viewers of one request share one job, a viewer leaving does not stop
it and the last one leaving does; the default run is the committed recording, which a fresh run reproduces."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from fastapi.testclient import TestClient

from app.backends.fakes import FakeImage, FakeRace, FakeText
from app.backends.interface import Backends
from app.backends.live_twins import LiveTwins
from app.demos.protocol import from_query, parse_request
from app.demos.train_record import recorded_points
from app.errors import RequestError
from app.main import create_app
from app.settings import Settings
from app.web.query import to_query
from models.text.live_request import MIN_TEXT_BYTES, TrainRequest, preset_text
from tests.app.live import exchange, fake_backends, live_server, run

SETTINGS = Settings(max_train_seconds=90, max_train_text_bytes=1000)  # the default budget at the limit
OWN_TEXT = "The cat sat on the mat. " * 40  # 960 bytes


@pytest.fixture(autouse=True, scope="module")
def _torch_threads() -> Iterator[None]:
    # the engine's workers set torch's threads as the server does (one a job here); the rest of the suite keeps its own
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def refused(payload: dict[str, Any]) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse_request("train", json.dumps(payload), SETTINGS)
    return caught.value


def test_limits_at_their_edges_name_the_field() -> None:
    assert parse_request("train", json.dumps({"seconds": 90}), SETTINGS) == TrainRequest(seconds=90)
    over = refused({"seconds": 91})
    assert over.field == "seconds" and "seconds 91 is over the limit of 90" in over.message
    assert "seconds should be greater than or equal to 1" in refused({"seconds": 0}).message
    edge = "x" * 1000
    assert parse_request("train", json.dumps({"preset": "own", "text": edge}), SETTINGS) == TrainRequest(preset="own", text=edge)
    long = refused({"preset": "own", "text": edge + "y"})
    assert long.field == "text" and "1,001 bytes of UTF-8, the limit is 1,000" in long.message
    wide = refused({"preset": "own", "text": "é" * 501})  # 1,002 bytes in 501 characters: bytes are what count
    assert wide.field == "text" and "1,002 bytes" in wide.message
    empty = refused({"preset": "own", "text": "  \n"})
    assert empty.field == "text" and "text is empty" in empty.message
    stray = refused({"preset": "stories-30k", "text": OWN_TEXT})
    assert stray.field == "text" and "only read with preset 'own'" in stray.message
    binary = refused({"preset": "own", "text": OWN_TEXT[:500] + "\x00\x01" + OWN_TEXT[:200]})
    assert binary.field == "text" and "U+0000" in binary.message and "binary" in binary.message
    assert "preset should be" in refused({"preset": "war-and-peace"}).message


def test_a_text_must_split_into_training_and_held_out_windows() -> None:
    # two windows held out and four to train on: 6 x 33 = 198 bytes is the shortest text that splits
    assert MIN_TEXT_BYTES == 198
    shortest = TrainRequest(preset="own", text="a" * 198)
    assert parse_request("train", json.dumps({"preset": "own", "text": "a" * 198}), SETTINGS) == shortest
    short = refused({"preset": "own", "text": "a" * 197})
    assert short.field == "text" and "too short to split" in short.message and "at least 198" in short.message


def test_a_page_drops_a_bad_text_for_the_default_preset_with_a_note() -> None:
    request, notes = from_query("train", {"preset": "own", "text": "too short", "seed": "4"}, SETTINGS)
    assert request == TrainRequest(seed=4)
    assert notes == [notes[0]] and notes[0].startswith("ignored the text: text is too short to split")
    request, notes = from_query("train", {"preset": "own", "text": OWN_TEXT}, SETTINGS)
    assert request == TrainRequest(preset="own", text=OWN_TEXT) and not notes
    assert TrainRequest.model_validate(to_query(request)) == request  # the link is the run


def test_a_run_streams_both_models_points_and_ends_with_the_summary() -> None:
    with live_server(backends=fake_backends(), use_torch=True) as live:  # LiveTwins.small(): a point every 4 steps, 12 steps
        result = run(exchange(live.ws("train", fmt="html"), {"seconds": 60, "seed": 3}))
    assert result.code == 1000 and result.types == ["frame"] * 4 + ["done"]
    frames = result.frames
    assert [f["train_step"] for f in frames] == [0, 4, 8, 12] and [f["step"] for f in frames] == [0, 1, 2, 3]
    assert all(f["ar_held_out"] > 0 and f["diffusion_held_out"] > 0 for f in frames)
    assert frames[-1]["epochs"] > frames[1]["epochs"] > 0 == frames[0]["epochs"]
    assert set(frames[0]["samples"]) == {"prompt", "ar", "diffusion"}  # samples from the current weights
    assert '<svg class="curves"' in frames[-1]["content"] and 'data-curve="autoregressive twin"' in frames[-1]["content"]
    assert 'class="curves empty"' in frames[0]["content"]  # step 0 has no epoch to plot on a log axis
    done = result.last
    assert done["steps"] == 12 and done["ar_best"] == min(f["ar_held_out"] for f in frames)
    assert done["diffusion_best"] == min(f["diffusion_held_out"] for f in frames) and done["recorded"] is None
    assert "Done: 12 steps" in done["content"] and "train-summary" in done["content"]


def test_the_served_experiment_trains_within_a_budget_of_seconds() -> None:
    with live_server(use_torch=True) as live:  # the served configuration (the default LiveTwins), a 2-second budget
        started = time.monotonic()
        result = run(exchange(live.ws("train"), {"seconds": 2, "seed": 5}))
        took = time.monotonic() - started
    assert result.types[-1] == "done" and len(result.frames) >= 2, result.types
    assert result.frames[-1]["seconds"] <= 3.0 and took < 15
    assert result.last["ar_best"] < result.frames[0]["ar_held_out"]  # it learned something in two seconds


async def _watch(url: str, request: dict[str, Any], leave_after: int | None = None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps(request))
        async for raw in ws:
            messages.append(json.loads(raw))
            if leave_after is not None and len(messages) >= leave_after:
                break
    return messages


def test_two_viewers_share_one_job_and_one_leaving_does_not_stop_it() -> None:
    backends = fake_backends()
    backends.trainer = LiveTwins.small(max_steps=60)  # long enough that the second viewer joins it in flight
    with live_server(backends=backends, use_torch=True) as live:
        request = {"seconds": 60, "seed": 9}

        async def both() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
            first = asyncio.create_task(_watch(live.ws("train"), request))
            await asyncio.sleep(0.2)
            leaver = asyncio.create_task(_watch(live.ws("train"), request, leave_after=2))
            second = asyncio.create_task(_watch(live.ws("train"), request))
            return await first, await leaver, await second

        first, leaver, second = run(both())
        assert live.engine.jobs_started == 1 and live.engine.joined_inflight + live.engine.cache_hits >= 2
    assert first[-1]["type"] == "done" and first == second  # one computation, the same messages for each viewer
    assert len(leaver) == 2 and first[-1]["steps"] == 60


def test_a_run_nobody_watches_any_more_stops() -> None:
    with live_server(use_torch=True) as live:  # the served configuration, a 30-second budget
        run(_watch(live.ws("train"), {"seconds": 30, "seed": 11}, leave_after=2))
        deadline = time.monotonic() + 10
        while live.engine.running:
            assert time.monotonic() < deadline, "the run went on with nobody watching"
            time.sleep(0.05)
        assert live.engine.cached == 0  # stopped, not finished: nothing to replay


def test_the_default_run_is_the_committed_recording_and_a_fresh_run_reproduces_its_first_points() -> None:
    from models.text.live_train import live_training

    request = TrainRequest()
    served = Backends(text=FakeText(), image=FakeImage(), race=FakeRace())  # the served trainer: LiveTwins()
    found = recorded_points(request, served)
    assert found is not None, "docs/live-train-10k.json has no run of the default request"
    points, source = found
    assert "docs/live-train-10k.json" in source and points[-1].seconds <= request.seconds + 2
    fresh = list(live_training(preset_text(request.preset), request.seed, math.inf, max_steps=50))
    for recorded, now in zip(points[:3], fresh, strict=True):
        assert recorded.step == now.step
        for name in ("ar_train", "ar_held_out", "diffusion_train", "diffusion_held_out"):
            assert getattr(recorded, name) == pytest.approx(getattr(now, name), abs=5e-3), (now.step, name)
    assert recorded_points(TrainRequest(seconds=89), served) is None  # another budget trains live
    assert recorded_points(request, fake_backends()) is None  # so does another network (the tests' small one)


def test_the_page_names_its_texts_limits_and_the_measurement() -> None:
    app = create_app(
        Settings(models="fake", prewarm=False, max_train_seconds=120), loader=lambda _s: fake_backends(), use_torch=False
    )
    with TestClient(app) as client:
        page = client.get("/train").text
        embed = client.get("/embed/train").text
    assert 'max="120"' in page and "TinyStories, 10 KB: " in page and "bytes to train on" in page
    assert "Measured: the default text, three seeds" in page and 'href="/data/live-train-10k.json"' in page
    assert '<button type="submit" id="generate" class="primary">Train</button>' in page
    assert "Measured: the default text" not in embed and 'class="frame train-frame placeholder"' in embed


def test_prewarm_caches_the_recording_without_training() -> None:
    backends = fake_backends()
    backends.trainer = LiveTwins()  # the served experiment, whose default run is recorded
    with live_server(backends=backends, prewarm=True, use_torch=True) as server:
        deadline = time.monotonic() + 30
        while server.engine.cached < 6:
            assert time.monotonic() < deadline, "prewarm did not finish"
            time.sleep(0.05)
        started = time.monotonic()
        result = run(exchange(server.ws("train"), {}))
        key_runs = server.engine.cache_hits
    assert result.last["type"] == "done" and result.last["recorded"] and key_runs >= 1
    assert time.monotonic() - started < 5  # a replay, not 90 s of training
