"""The image lab on the web: a run from a held-out digit over /ws/image (denoise from t, inpainting), the image
page that shows it, the inpainting page, and their limits at the edges (fake models; the real ones in
tests/models/test_image_lab.py and tests/app/test_real_models.py)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.demos.protocol import from_query, parse_request
from app.engine.interface import run_key
from app.errors import RequestError
from app.settings import Settings
from models.image.data import held_out_digit
from models.image.masks import MASK_CHARS, PRESETS, decode_mask, encode_mask, preset_mask
from models.image.request import ImageRequest
from tests.app.live import Live, exchange, run
from tests.app.test_forward import decode_png

TOP = encode_mask(preset_mask("top"))


def stream(live: Live, request: dict[str, Any], fmt: str = "json") -> list[dict[str, Any]]:
    """The messages of one run over a real socket, to the server's close."""
    return run(exchange(live.ws("image", fmt), request)).messages


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"source": 10_000}, "source should be less than or equal to 9999"),
        ({"source": -1}, "source should be greater than or equal to 0"),
        ({"source": 3, "start_t": 0}, "start_t should be greater than or equal to 1"),
        ({"source": 3, "start_t": 1000}, "start_t should be less than or equal to 999"),
        ({"start_t": 300}, "start_t needs a source digit to noise"),
        ({"mask": TOP}, "mask needs a source digit whose other pixels it keeps"),
        ({"source": 3, "start_t": 300, "mask": TOP}, "mask and start_t cannot be combined"),
        ({"source": 3, "mask": "A" * MASK_CHARS}, "mask fills no pixel"),
        ({"source": 3, "mask": TOP[:-1]}, f"got {MASK_CHARS - 1} characters"),
        ({"source": 3, "mask": TOP + "A"}, f"should have at most {MASK_CHARS} characters"),
        ({"source": 3, "mask": TOP[:-1] + "!"}, "'!' is not a base64url character"),
        ({"source": 3, "mask": 5}, "mask should be a valid string"),
    ],
)
def test_bad_lab_requests_are_refused_with_a_reason(live: Live, request_: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError, match=re.escape(message)):
        parse_request("image", json.dumps(request_), Settings())
    result = run(exchange(live.ws("image"), request_))
    assert result.types == ["error"] and message in result.last["message"] and result.code == 1008


def test_the_edges_that_are_allowed(live: Live) -> None:
    for request in (
        {"source": 0, "start_t": 1, "steps": 3},
        {"source": 9999, "start_t": 999, "steps": 3},
        {"source": 5, "steps": 3},
    ):
        assert stream(live, request)[-1]["type"] == "done"
    one_pixel = np.zeros((28, 28), bool)
    one_pixel[27, 27] = True
    assert stream(live, {"source": 9999, "mask": encode_mask(one_pixel), "steps": 3})[-1]["type"] == "done"


def test_a_run_from_noise_keeps_its_key() -> None:
    """The lab's fields are left out of a plain request's dump: caches, traces and links from before still match."""
    assert run_key("image", ImageRequest()) == 'image:{"digit":3,"guidance":1.0,"sampler":"ddim","seed":0,"steps":50}'
    assert run_key("image", ImageRequest(source=2, start_t=300)) != run_key("image", ImageRequest(source=2, start_t=301))


def test_a_denoise_run_streams_the_drift_and_the_original_once(live: Live) -> None:
    messages = stream(live, {"source": 7, "start_t": 600, "steps": 6, "digit": None})
    frames, done = messages[:-1], messages[-1]
    assert [f["step"] for f in frames] == list(range(7)) and frames[0]["timestep"] == 600
    assert ["original_png" in f for f in frames] == [True] + [False] * 6
    assert np.array_equal(decode_png(frames[0]["original_png"]), held_out_digit(7)[0])
    assert all(isinstance(f["drift"], float) and 0 <= f["drift"] <= 100 for f in frames)
    assert done["type"] == "done" and done["drift"] == frames[-1]["drift"] and "kept_max_change" not in done


def test_an_inpainting_run_keeps_the_kept_pixels_and_says_so(live: Live) -> None:
    messages = stream(live, {"source": 4, "mask": TOP, "steps": 5, "digit": None})
    done = messages[-1]
    assert done["kept_max_change"] == 0
    shown = decode_png(messages[0]["original_png"])
    image = held_out_digit(4)[0]
    fill = preset_mask("top")
    assert np.array_equal(shown[~fill], image[~fill]) and not np.array_equal(shown[fill], image[fill])  # hatched


def test_the_html_frames_and_done_show_the_original_and_the_drift(live: Live) -> None:
    html = [m["content"] for m in stream(live, {"source": 4, "mask": TOP, "steps": 3, "digit": None}, fmt="html")]
    assert len(html) == 5
    assert all('class="px original"' in frame and "x0 vs original, filled pixels" in frame for frame in html[:4])
    assert "test digit no. 4 (a 4), pixels to fill hatched" in html[0]
    assert "Kept 392 pixels of test digit no. 4 (a 4): their largest change is 0 grey levels" in html[4]


def test_the_image_page_keeps_a_lab_run_and_shows_the_way_back(client: TestClient) -> None:
    html = client.get("/image?source=12&start_t=450&digit=none").text
    assert "Denoising test digit no. 12 from t = 450" in html
    assert 'name="source" value="12"' in html and 'name="start_t" value="450"' in html  # Generate keeps them
    assert 'href="/image/forward?index=12&amp;t=450"' in html
    assert 'href="/image?digit=none&amp;guidance=1.0&amp;sampler=ddim&amp;steps=50&amp;seed=0"' in html  # from noise
    assert html.count('class="px original"') == 1  # the placeholder shows the original before the first frame
    fragment = client.get("/image/run?source=12&start_t=450&digit=none").text  # Generate swaps this in: its request
    assert "&#34;source&#34;:12" in fragment and "&#34;start_t&#34;:450" in fragment
    inpaint = client.get(f"/image?source=12&mask={TOP}").text
    assert "Filling the hatched pixels of test digit no. 12 with RePaint" in inpaint
    assert f'href="/image/inpaint?index=12&amp;mask={TOP}"' in inpaint


def test_a_bad_lab_query_is_dropped_with_a_note(client: TestClient) -> None:
    request, notes = from_query("image", {"start_t": "300", "digit": "4"}, Settings())
    assert request == ImageRequest(digit=4) and "start_t needs a source digit" in notes[0]
    request, notes = from_query("image", {"source": "3", "mask": "nonsense"}, Settings())
    assert request == ImageRequest(source=3) and "ignored mask='nonsense'" in notes[0]
    assert "px original" in client.get("/image?source=3&mask=nonsense").text  # still a lab page: from t = 999


def test_the_inpainting_page(client: TestClient) -> None:
    response = client.get("/image/inpaint?index=42")
    assert response.status_code == 200
    html = response.text
    label = held_out_digit(42)[1]
    assert f"test digit no. 42, a {label}" in html
    assert re.search(r'<form id="inpaint-form"[^>]*action="/image"', html)
    assert 'name="source" value="42"' in html and f'id="mask-field" value="{TOP}"' in html  # the default preset
    for name in PRESETS:  # every preset is a link that works without script, and its mask is the preset's
        link = re.search(rf'href="([^"]+)" data-mask="([^"]+)" id="preset-{name}"', html)
        assert link is not None
        query = parse_qs(urlparse(link.group(1).replace("&amp;", "&")).query)
        assert query["mask"] == [link.group(2)] and np.array_equal(decode_mask(link.group(2)), preset_mask(name, seed=42))
    assert "<script>" not in html and "style=" not in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("index=10000", "index must be between 0 and 9999"),
        ("index=x", "index must be a whole number"),
        ("index=1&mask=abc", "got 3 characters; showing the top half preset instead"),
        (f"index=1&mask={'A' * MASK_CHARS}", "mask fills no pixel"),
    ],
)
def test_the_inpainting_page_explains_a_bad_query(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"/image/inpaint?{query}")
    assert response.status_code == 422 and message in response.text
    assert 'id="mask-canvas"' in response.text  # still an editor to work with


@pytest.mark.parametrize("field", ["source", "start_t", "mask"])
def test_the_grid_refuses_the_lab_fields(field: str) -> None:
    values = {"source": 3, "start_t": 400, "mask": TOP}
    request = {"source": 3, field: values[field]}
    with pytest.raises(RequestError, match=r"(source|start_t|mask) is not for the grid, which starts 16 samples from noise"):
        parse_request("image/grid", json.dumps(request), Settings())
