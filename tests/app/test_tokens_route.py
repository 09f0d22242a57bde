"""`GET /text/tokens` (the infill editor's count of a selection) and sized gaps (`___{8}`) through `/ws/text`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.backends.fakes import FakeImage, FakeRace, FakeText
from app.backends.interface import Backends
from app.backends.real import RealText
from app.demos.protocol import parse_request
from app.errors import RequestError
from app.main import create_app
from app.settings import Settings
from tests.app.live import Live, exchange, live_server, run

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
LIMIT = 40  # max_prompt_chars in these tests: the bound of the endpoint's text


@pytest.fixture(scope="module")
def diffusion() -> Any:
    from models.text.model import load_text_model

    return load_text_model(CHECKPOINTS / "text-diffusion")


def client_with(text: Any) -> TestClient:
    backends = Backends(text=text, image=FakeImage(), race=FakeRace())
    settings = Settings(models="fake", max_prompt_chars=LIMIT)
    return TestClient(create_app(settings, loader=lambda _s: backends, use_torch=False))


@pytest.fixture(scope="module")
def real(diffusion: Any) -> Iterator[TestClient]:
    with client_with(RealText(diffusion)) as client:
        yield client


@pytest.mark.real_model
@pytest.mark.parametrize("text", ["red ball", " red ball", "Tom had a red ball.", "", "naïve café ___ {8}", "a" * LIMIT])
def test_the_count_is_the_tokenizers(real: TestClient, diffusion: Any, text: str) -> None:
    response = real.get("/text/tokens", params={"text": text})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"tokens": len(diffusion.tokenizer.encode(text).ids)}


@pytest.mark.real_model
def test_the_text_is_bounded_by_the_prompt_limit(real: TestClient) -> None:
    assert real.get("/text/tokens", params={"text": "b" * LIMIT}).status_code == 200  # at the edge
    over = real.get("/text/tokens", params={"text": "b" * (LIMIT + 1)})  # one past it
    assert over.status_code == 422
    assert over.json() == {"error": f"text is too long: {LIMIT + 1} characters, the limit is {LIMIT}"}
    assert real.get("/text/tokens").status_code == 422  # no text at all


def test_the_fake_model_counts_its_own_way() -> None:
    fake = FakeText()
    with client_with(fake) as client:
        response = client.get("/text/tokens", params={"text": "the cat  sat on"})
        assert response.json() == {"tokens": fake.count_tokens("the cat  sat on")} == {"tokens": 4}


def test_a_model_without_a_count_says_so() -> None:
    class Opaque:
        name, trained, description = "opaque", False, ""

    with client_with(Opaque()) as client:
        response = client.get("/text/tokens", params={"text": "hi"})
        assert response.status_code == 501 and "does not count tokens" in response.json()["error"]


# ---- sized gaps over the websocket, on the committed model -----------------------------------------------------


@pytest.fixture(scope="module")
def live(diffusion: Any) -> Iterator[Live]:
    with live_server(backends=Backends(text=RealText(diffusion), image=FakeImage(), race=FakeRace())) as server:
        yield server


@pytest.mark.real_model
def test_a_template_with_sized_gaps_streams_and_keeps_its_fixed_text(live: Live, diffusion: Any) -> None:
    request = {"prompt": "Tom had a red ball. ___{3} He was ___{2}.", "length": 64, "steps": 3, "seed": 2}
    result = run(exchange(live.ws("text"), request))
    assert result.code == 1000 and result.types[-1] == "done"
    first, last = result.frames[0], result.frames[-1]
    assert first["masked"] == first["generated"] == 5 and last["masked"] == 0  # 3 + 2 blanks, not 2 x 64
    states = [t["state"] for t in first["tokens"]]
    left = len(diffusion.tokenizer.encode("Tom had a red ball. ").ids)
    middle = len(diffusion.tokenizer.encode(" He was ").ids)
    assert states == ["fixed"] * left + ["blank"] * 3 + ["fixed"] * middle + ["blank"] * 2 + ["fixed"]
    fixed = [(i, t["text"]) for i, t in enumerate(first["tokens"]) if t["state"] == "fixed"]
    assert [(i, last["tokens"][i]["text"]) for i, _ in fixed] == fixed
    assert result.last["text"].startswith("Tom had a red ball.") and result.last["text"].endswith(".")


@pytest.mark.real_model
def test_a_malformed_gap_is_refused_naming_it(live: Live) -> None:
    result = run(exchange(live.ws("text"), {"prompt": "a ___{4} b ___{0} c", "steps": 2}))
    assert result.types == ["error"] and result.code == 1008
    assert result.last["message"].startswith("invalid request: prompt has gap 2 written ___{0}: ")
    assert "from 1 to the length limit" in result.last["message"]


@pytest.mark.real_model
def test_a_template_over_the_context_names_the_gap_to_shorten(live: Live) -> None:
    result = run(exchange(live.ws("text"), {"prompt": "Tom had a ball. ___{100} ___{150} He was sad.", "steps": 2}))
    assert result.types == ["error"] and result.code == 1008
    assert "too many; shorten gap 2 (150 blanks) to " in result.last["message"]


def test_a_gap_over_the_length_limit_is_refused_as_length_is() -> None:
    settings = Settings(models="fake")
    parse_request("text", '{"prompt": "a ___{192} b"}', settings)  # at the limit
    with pytest.raises(RequestError) as refused:
        parse_request("text", '{"prompt": "a ___{3} b ___{193} c"}', settings)
    assert refused.value.message == "gap 2 of the prompt is 193 blanks, over the limit of 192: a gap's size is 1 to 192"
    assert refused.value.field == "prompt"
