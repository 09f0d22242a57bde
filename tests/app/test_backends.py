"""The real backends (with freshly initialised models of the real classes): the app's count of a text
request's canvas matches the sampler's, and the samplers' refusals reach the engine as `Refused`."""

from __future__ import annotations

import pytest

from app.backends.fakes import FakeImage, FakeRace
from app.backends.interface import Backends
from app.backends.real import RealImage, RealText
from app.engine.interface import Refused
from app.errors import RequestError
from models.image.request import ImageRequest
from models.text.decoding import TextRequest, tokens_needed


@pytest.fixture(scope="module")
def text() -> RealText:
    from models.text.model import untrained_text_model

    return RealText(untrained_text_model(causal=False))


@pytest.mark.parametrize("prompt", ["", "Once upon a time", "a ___ b", "___ starts, ends ___", "one ___ two ___ three", "___"])
def test_the_apps_token_count_matches_the_samplers_canvas(text: RealText, prompt: str) -> None:
    from models.text.sample import build_canvas

    request = TextRequest(prompt=prompt, length=5)
    canvas = build_canvas(text.model, request)
    assert tokens_needed(request, text.count_tokens) == len(canvas)


def test_context_edge_with_the_real_tokenizer(text: RealText) -> None:
    backends = Backends(text=text, image=FakeImage(), race=FakeRace())
    prompt = "Once upon a time"
    room = text.context - text.count_tokens(prompt)
    backends.check(TextRequest(prompt=prompt, length=room))  # fits exactly
    with pytest.raises(RequestError) as refused:
        backends.check(TextRequest(prompt=prompt, length=room + 1))
    assert refused.value.code == 1008 and f"but the model reads at most {text.context}" in refused.value.message


def test_a_text_sampling_error_becomes_refused_with_the_samplers_message(text: RealText) -> None:
    with pytest.raises(Refused, match=f"but the model reads at most {text.context}"):
        next(iter(text.sample(TextRequest(prompt="", length=text.context + 1, steps=1))))


def test_an_image_sampling_error_becomes_refused() -> None:
    from models.image.model import untrained_image_model

    image = RealImage(untrained_image_model())
    with pytest.raises(Refused, match="steps must be between 1 and 1000"):
        next(iter(image.sample(ImageRequest(steps=1001))))


def test_the_web_layer_and_the_fakes_import_without_torch() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, app.demos.protocol, app.backends.fakes, app.backends.real; print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout.strip() == "False"


def test_a_client_cannot_ask_for_a_batch_of_images() -> None:
    from app.demos.protocol import from_query, parse_request
    from app.engine.interface import run_key
    from app.settings import Settings
    from app.web.query import to_query

    with pytest.raises(RequestError, match="unknown field 'batch'"):
        parse_request("image", '{"batch": 4}', Settings())
    request, _ = from_query("image", {"batch": "4", "seed": "2"}, Settings())
    assert isinstance(request, ImageRequest) and request == ImageRequest(seed=2) and request.batch == 1
    # `batch` is the CLIs' field: it is in no key and no URL
    assert "batch" not in run_key("image", ImageRequest(batch=4)) and "batch" not in to_query(ImageRequest(batch=4))
