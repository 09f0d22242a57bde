"""The race on a live server running the committed checkpoints (the models people see), through the
engine and the renderer, both wire formats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.backends.fakes import FakeImage
from app.backends.interface import Backends
from app.backends.real import RealRace, RealText
from tests.app.live import Live, exchange, live_server, run

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
LEFT, RIGHT = "Tom had a red ball. ", " He was sad."
pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    from models.text.model import load_text_model

    diffusion = load_text_model(CHECKPOINTS / "text-diffusion")
    autoregressive = load_text_model(CHECKPOINTS / "text-ar")
    assert diffusion.trained and autoregressive.trained
    backends = Backends(text=RealText(diffusion), image=FakeImage(), race=RealRace(diffusion, autoregressive))
    with live_server(backends=backends) as server:
        yield server


def lanes(message: dict) -> dict[str, dict]:
    return {lane["lane"]: lane for lane in message["lanes"]}


def test_a_short_race_completes_with_both_texts(live: Live) -> None:
    result = run(exchange(live.ws("race"), {"prompt": "Once upon a time", "length": 16, "steps": 4, "seed": 3}))
    assert result.code == 1000 and result.types[-1] == "done"
    frames = result.frames
    assert [f["step"] for f in frames] == list(range(17)) and all(f["total"] == 16 for f in frames)
    for frame in frames:
        by_lane = lanes(frame)
        assert by_lane["ar"]["forward_passes"] == by_lane["ar"]["decided"] == frame["step"]
        assert by_lane["diffusion"]["forward_passes"] == min(frame["step"], 4)
    done = lanes(result.last)
    for name, passes in (("diffusion", 4), ("ar", 16)):
        lane = done[name]
        assert lane["forward_passes"] == passes and lane["wall_ms"] > 0
        assert lane["text"].startswith("Once upon a time") and len(lane["text"]) > len("Once upon a time") + 8
        assert "___" not in lane["text"]
        assert len(lane["decisions"]["events"]) == 16
    assert done["ar"]["decisions"]["in_order_share"] == 1.0


def test_the_infill_race_keeps_the_fixed_text_and_the_ar_lane_never_reads_the_right_side(live: Live) -> None:
    request = {"prompt": LEFT + "___" + RIGHT, "length": 8, "steps": 4, "seed": 5}
    result = run(exchange(live.ws("race"), request))
    assert result.code == 1000
    final = lanes(result.frames[-1])
    diffusion_tokens, ar_tokens = final["diffusion"]["tokens"], final["ar"]["tokens"]
    fixed = [t for t in diffusion_tokens if t["state"] == "fixed"]
    assert "".join(t["text"] for t in fixed) == LEFT + RIGHT  # both sides kept, around the filled gap
    assert diffusion_tokens[0]["state"] == diffusion_tokens[-1]["state"] == "fixed"
    assert "".join(t["text"] for t in ar_tokens if t["state"] == "fixed") == LEFT
    assert final["ar"]["unseen"] == RIGHT and lanes(result.last)["ar"]["unseen"] == RIGHT
    # Without the right-hand text at all, the AR lane writes exactly the same tokens: it never read it.
    alone = run(exchange(live.ws("race"), {**request, "prompt": LEFT}))
    assert [t["text"] for t in lanes(alone.frames[-1])["ar"]["tokens"]] == [t["text"] for t in ar_tokens]


def test_the_html_race_ends_with_two_decision_maps_and_the_measured_verdict(live: Live) -> None:
    result = run(exchange(live.ws("race", fmt="html"), {"prompt": "Once upon a time", "length": 12, "steps": 4}))
    assert result.code == 1000
    assert 'class="frame race-frame"' in result.frames[3]["content"]
    content = result.last["content"]
    assert content.count('class="decision-map"') == 2 and 'hx-swap-oob="true"' in content
    assert "Diffusion used 3.0x fewer forward passes" in content
    assert "left to right, one per pass" in content


def test_a_race_with_two_gaps_is_refused_with_a_reason(live: Live) -> None:
    result = run(exchange(live.ws("race"), {"prompt": "a ___ b ___ c", "length": 4}))
    assert result.code == 1008 and result.types == ["error"]
    assert "the race fills one gap" in result.last["message"]
