"""Samplers side by side (/image/samplers, /ws/image/samplers): the request's limits at their edges, the clock
(the fraction of each lane's run), the socket and the page with the fake, and one run on the committed DDPM."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.backends.fakes import FakeImage
from app.backends.load import load_backends
from app.demos.protocol import from_query, parse_request
from app.errors import RequestError
from app.render.samplers import comparison
from app.settings import Settings
from app.web.query import to_query
from models.image.request import ImageSamplersRequest, Sampler
from models.image.samplers_race import LANES, SamplerLane, lane_step, race_samplers
from tests.app.live import Live, exchange, live_server, run

STEPS = ("ddpm_steps", "ddim_steps", "dpm_steps")


def lanes(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lane["lane"]: lane for lane in message["lanes"]}


# ---------------------------------------------------------------------------------------------------------
# The request


def test_the_defaults_are_1000_50_20_and_round_trip_through_a_url() -> None:
    request = ImageSamplersRequest()
    assert (request.ddpm_steps, request.ddim_steps, request.dpm_steps) == (1000, 50, 20)
    assert (request.digit, request.guidance, request.seed) == (3, 1.0, 0)
    custom = ImageSamplersRequest(digit=None, ddpm_steps=100, ddim_steps=20, dpm_steps=10, seed=7)
    assert from_query("image/samplers", to_query(custom), Settings()) == (custom, [])


@pytest.mark.parametrize("name", STEPS)
def test_each_lanes_steps_are_held_to_the_limit_at_the_edge(name: str) -> None:
    settings = Settings(max_image_steps=200)
    others = {other: 10 for other in STEPS if other != name}
    at = parse_request("image/samplers", json.dumps({**others, name: 200}), settings)
    assert getattr(at, name) == 200
    with pytest.raises(RequestError) as error:
        parse_request("image/samplers", json.dumps({**others, name: 201}), settings)
    assert error.value.message == f"{name} 201 is over the limit of 200" and error.value.field == name
    with pytest.raises(RequestError, match=rf"^invalid request: {name} should be greater than or equal to 1$"):
        parse_request("image/samplers", json.dumps({name: 0}), settings)
    with pytest.raises(RequestError, match=rf"{name} should be a valid integer"):
        parse_request("image/samplers", json.dumps({name: "20"}), settings)  # strict, as every request


def test_the_default_request_fits_the_default_limit_and_a_url_over_it_falls_back_with_a_note() -> None:
    assert parse_request("image/samplers", "{}", Settings()) == ImageSamplersRequest()
    request, notes = from_query("image/samplers", {"ddim_steps": "1001", "dpm_steps": "5"}, Settings())
    assert request == ImageSamplersRequest(dpm_steps=5)
    assert notes == ["ignored ddim_steps='1001': ddim_steps 1001 is over the limit of 1000; using 50"]


def test_unknown_fields_and_bad_digits_are_refused() -> None:
    with pytest.raises(RequestError, match="unknown field 'steps'"):  # each lane has its own: no shared steps
        parse_request("image/samplers", '{"steps": 20}', Settings())
    with pytest.raises(RequestError, match="digit should be less than or equal to 9"):
        parse_request("image/samplers", '{"digit": 10}', Settings())


# ---------------------------------------------------------------------------------------------------------
# The clock


@pytest.mark.parametrize(("steps", "total"), [(1000, 1000), (50, 1000), (20, 1000), (7, 13), (1, 5), (13, 13)])
def test_each_lane_is_at_the_step_nearest_its_fraction_and_moves_at_most_one_step_a_frame(steps: int, total: int) -> None:
    positions = [lane_step(k, steps, total) for k in range(total + 1)]
    assert positions[0] == 0 and positions[-1] == steps
    assert all(0 <= b - a <= 1 for a, b in itertools.pairwise(positions))
    for k, position in enumerate(positions):  # the nearest: never more than half a step from k/K of its run
        assert abs(position - k * steps / total) <= 0.5


def test_the_lanes_share_one_clock_and_each_is_timed_on_its_own() -> None:
    request = ImageSamplersRequest(digit=6, ddpm_steps=12, ddim_steps=5, dpm_steps=3)
    frames = list(race_samplers(FakeImage(step_seconds=0.002).sample, request))
    assert [f.step for f in frames] == list(range(13)) and {f.total for f in frames} == {12}
    for frame in frames:
        by_name = {lane.name: lane for lane in frame.lanes}
        assert tuple(by_name) == LANES
        for lane in by_name.values():
            assert lane.step == lane.passes == lane_step(frame.step, lane.total, 12)
            assert (lane.x0 is None) == (lane.step == 0)
    last = {lane.name: lane for lane in frames[-1].lanes}
    assert all(lane.finished for lane in last.values())
    # 2 ms a step, measured: the DDPM lane's 12 steps took about four times the DPM lane's 3
    assert last["ddpm"].wall_ms > 2 * last["dpm"].wall_ms > 0


def test_a_stop_ends_the_run_within_a_frame() -> None:
    seen: list[int] = []

    def stop() -> bool:
        return len(seen) >= 3

    request = ImageSamplersRequest(ddpm_steps=20, ddim_steps=5, dpm_steps=2)
    for frame in race_samplers(FakeImage().sample, request, stop):
        seen.append(frame.step)
    assert seen == [0, 1, 2]


# ---------------------------------------------------------------------------------------------------------
# The socket and the page, with the fake


def test_a_json_run_streams_every_lane_on_the_shared_clock_then_each_lanes_numbers(live: Live) -> None:
    request = {"digit": 4, "ddpm_steps": 20, "ddim_steps": 8, "dpm_steps": 3, "seed": 1}
    result = run(exchange(live.ws("image/samplers"), request))
    assert result.code == 1000 and result.types == ["frame"] * 21 + ["done"]
    for frame in result.frames:
        assert frame["total"] == 20 and [lane["lane"] for lane in frame["lanes"]] == list(LANES)
        for lane in frame["lanes"]:
            assert lane["step"] == lane["forward_passes"] == lane_step(frame["step"], lane["total"], 20)
            assert lane["finished"] == (lane["step"] == lane["total"]) and lane["wall_ms"] >= 0
            assert (lane["x0_png"] is None) == (lane["step"] == 0)
    done = lanes(result.last)
    assert [done[name]["forward_passes"] for name in LANES] == [20, 8, 3]
    for lane in done.values():
        assert lane["final_class"]["digit"] == 4 and isinstance(lane["decided_at"], int) and lane["wall_ms"] > 0
        assert 0 < lane["decided_at"] <= lane["steps"]


def test_the_html_run_shows_three_lanes_with_their_own_step_and_the_verdict_at_the_end(live: Live) -> None:
    request = {"digit": 4, "ddpm_steps": 20, "ddim_steps": 8, "dpm_steps": 3}
    result = run(exchange(live.ws("image/samplers", fmt="html"), request))
    middle = result.frames[10]["content"]
    assert middle.count('<section class="lane sampler-lane') == 3 and "style=" not in middle
    assert "<b>10 of 20</b> step" in middle and "<b>4 of 8</b> step" in middle and "<b>2 of 3</b> step" in middle
    assert 'data-status="frame 10 of 20: DDPM step 10 of 20, DDIM step 4 of 8, DPM-Solver++ step 2 of 3"' in middle
    assert result.frames[-1]["content"].count('<p class="finish">finished in ') == 3
    done = result.last["content"]
    assert "DPM-Solver++ used 6.7x fewer forward passes than DDPM" in done
    # the next sentence gives the quality of both, measured on this run
    verdict = re.search(r'<p class="verdict">([^<]*fewer forward passes[^<]*?\.) (Quality[^<]*)</p>', done)
    assert verdict is not None and verdict[1].endswith("on this server.")
    assert verdict[2].startswith("Quality, measured on this run: the classifier reads DPM-Solver++&#39;s final image as a 4 (")
    assert "DDPM&#39;s as a 4 (" in verdict[2] and verdict[2].count("the digit asked for") == 2
    assert done.count("decided at step") == 3 and "each lane&#39;s own sampler time" in done


def test_the_page_says_what_it_shows_and_keeps_three_lanes_of_boxes(client: TestClient) -> None:
    page = client.get("/image/samplers?ddpm_steps=100&ddim_steps=20&dpm_steps=10")
    assert page.status_code == 200
    text = page.text
    assert "DDPM takes many small" in text and "(100 here)" in text and "measured live" in text
    assert 'class="frame samplers-frame placeholder"' in text and text.count('class="px sampler-px empty"') == 6
    assert "<b>0 of 100</b> step" in text and "<b>0 of 10</b> step" in text
    assert 'name="ddpm_steps"' in text and 'max="1000"' in text
    embed = client.get("/embed/image/samplers?autoplay=1")
    assert embed.status_code == 200 and 'hx-ws:connect="/ws/image/samplers"' in embed.text
    assert 'href="/image/samplers"' in client.get("/image").text and 'href="/image/samplers"' in client.get("/").text


def _sampler_lane(name: Sampler, steps: int, wall_ms: float, digit: int | None, sure: float = 0.9) -> SamplerLane:
    probabilities = tuple(sure if d == digit else (1 - sure) / 9 for d in range(10)) if digit is not None else ()
    image = np.zeros((28, 28), np.uint8)
    return SamplerLane(name, steps, steps, image, image, steps, wall_ms, probabilities)


def test_the_speed_sentence_is_followed_by_both_lanes_quality() -> None:
    fast, slow = _sampler_lane("dpm", 20, 100.0, 8, 0.62), _sampler_lane("ddpm", 1000, 4000.0, 3, 0.99)
    text = comparison([slow, _sampler_lane("ddim", 50, 250.0, 3), fast], digit=3)
    assert text == (
        "DPM-Solver++ used 50x fewer forward passes than DDPM and 40x less wall time on this server. "
        "Quality, measured on this run: the classifier reads DPM-Solver++'s final image as an 8 (62%, not the 3 asked "
        "for) and DDPM's as a 3 (99%, the digit asked for)."
    )
    unconditional = comparison([_sampler_lane("dpm", 20, 100.0, 1), _sampler_lane("ddpm", 1000, 90.0, 7)], digit=None)
    assert "and 1.1x more wall time on this server." in unconditional  # fewer passes, yet slower: said as measured
    assert unconditional.endswith("DPM-Solver++'s final image as a 1 (90%) and DDPM's as a 7 (90%).")
    blind = comparison([_sampler_lane("dpm", 20, 100.0, None), _sampler_lane("ddpm", 1000, 900.0, None)], digit=3)
    assert blind.endswith("No digit classifier is loaded, so this run measures no quality to set beside the speed.")
    assert comparison([_sampler_lane("dpm", 20, 1.0, 3), _sampler_lane("ddim", 20, 2.0, 3)], digit=3) == ""  # no faster


# ---------------------------------------------------------------------------------------------------------
# The committed checkpoints


@pytest.fixture(scope="module")
def real_live() -> Iterator[Live]:
    backends = load_backends(Settings())
    with live_server(backends=backends, use_torch=True, cache_bytes=0) as server:
        yield server


# Measured at 100/20/10 steps, seed 0, guidance 1, digits 0-9: DDPM drew 9 of the 10 digits asked for, DDIM 10,
# DPM-Solver++ 3 (at 10 steps it draws most digits as an 8; at its default 20 steps, alone, 7 of 10). A 3 is one
# every lane draws, so a lane that does not read as one here is broken.
@pytest.mark.real_model
def test_the_three_samplers_on_the_committed_ddpm_all_finish_and_draw_the_digit(real_live: Live) -> None:
    request = {"digit": 3, "ddpm_steps": 100, "ddim_steps": 20, "dpm_steps": 10, "seed": 0}
    result = run(exchange(real_live.ws("image/samplers"), request))
    assert result.code == 1000 and len(result.frames) == 101
    last = lanes(result.frames[-1])
    assert all(lane["finished"] for lane in last.values())
    done = lanes(result.last)
    assert [done[name]["forward_passes"] for name in LANES] == [100, 20, 10]
    for lane in done.values():
        assert lane["final_class"]["digit"] == 3 and lane["final_class"]["probability"] > 0.5
        assert lane["decided_at"] is not None and lane["decided_at"] <= lane["steps"]
    # measured, each lane its own time: 100 passes cost several times what 10 do
    assert done["ddpm"]["wall_ms"] > 3 * done["dpm"]["wall_ms"] > 0
