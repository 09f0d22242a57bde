"""/image/forward: the forward process on a held-out digit (app/routes/forward.py)."""

from __future__ import annotations

import base64
import re
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.backends.fakes import FakeImage
from models.image.data import held_out_split


def decode_png(data: str) -> np.ndarray:
    """The route's own 8-bit greyscale PNGs (app.render.image.png_bytes): one IDAT, filter 0 rows."""
    raw = base64.b64decode(data)
    width, height = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    idat = raw.index(b"IDAT")
    length = int.from_bytes(raw[idat - 4 : idat], "big")
    rows = np.frombuffer(zlib.decompress(raw[idat + 4 : idat + 4 + length]), np.uint8).reshape(height, width + 1)
    return rows[:, 1:]


def images(html: str) -> tuple[np.ndarray, np.ndarray]:
    """(x_t, x_0) of a figure."""
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(pngs) == 2
    return decode_png(pngs[0]), decode_png(pngs[1])


def test_the_digits_come_from_the_committed_evaluation_file() -> None:
    from models.image.data import EVALUATION_MNIST, held_out_split, load_split

    digits, labels = held_out_split()
    assert digits.shape == (10_000, 28, 28) and digits.dtype == np.uint8 and labels.shape == (10_000,)
    assert held_out_split()[0] is digits  # read once
    assert np.array_equal(load_split(EVALUATION_MNIST, "t10k")[0], digits)


def test_t0_is_the_digit_itself(client: TestClient) -> None:
    response = client.get("/image/forward/frame?index=7&t=0")
    assert response.status_code == 200
    xt, x0 = images(response.text)
    assert np.array_equal(x0, held_out_split()[0][7])
    assert np.array_equal(xt, x0)
    assert response.headers["HX-Replace-Url"] == "/image/forward?index=7&t=0"
    assert "t = 0" in response.text


def test_t999_is_nearly_pure_noise(client: TestClient) -> None:
    xt, x0 = images(client.get("/image/forward/frame?index=7&t=999").text)
    # The digit is gone: x_t does not correlate with it; its grey levels are noise's (mean near mid-grey, spread wide).
    correlation = np.corrcoef(xt.ravel().astype(float), x0.ravel().astype(float))[0, 1]
    assert abs(correlation) < 0.15
    assert 100 < xt.mean() < 155 and xt.std() > 60
    # Halfway it is still visibly the digit.
    mid, _ = images(client.get("/image/forward/frame?index=7&t=300").text)
    assert np.corrcoef(mid.ravel().astype(float), x0.ravel().astype(float))[0, 1] > 0.5


def test_the_noise_level_is_the_schedules(client: TestClient) -> None:
    schedule = FakeImage().noise_schedule()
    html = client.get("/image/forward/frame?index=3&t=400").text
    assert f"<b>{schedule[400]:.3f}</b> noise" in html
    assert f"t = 400, noise {schedule[400]:.2f}" in html  # the plot's marker label


def test_same_index_and_t_give_the_same_image_and_the_noise_is_per_digit(client: TestClient) -> None:
    first = client.get("/image/forward/frame?index=42&t=600").text
    assert client.get("/image/forward/frame?index=42&t=600").text == first
    other, _ = images(client.get("/image/forward/frame?index=43&t=600").text)
    assert not np.array_equal(images(first)[0], other)
    # The same noise at every t: x_t moves continuously as t does.
    a, _ = images(client.get("/image/forward/frame?index=42&t=601").text)
    assert np.abs(a.astype(int) - images(first)[0].astype(int)).max() <= 3


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("index=10000&t=5", "index must be between 0 and 9999"),
        ("index=-1&t=5", "index must be between 0 and 9999"),
        ("index=3&t=1000", "t must be between 0 and 999"),
        ("index=3&t=-2", "t must be between 0 and 999"),
        ("index=three&t=5", "index must be a whole number between 0 and 9999"),
        ("index=3&t=1.5", "t must be a whole number between 0 and 999"),
    ],
)
def test_out_of_range_is_a_clear_422(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"/image/forward/frame?{query}")
    assert response.status_code == 422
    assert message in response.text and 'role="alert"' in response.text
    page = client.get(f"/image/forward?{query}")
    assert page.status_code == 422 and message in page.text


def test_the_page_renders_with_index_and_t_from_the_url(client: TestClient) -> None:
    response = client.get("/image/forward?index=123&t=456")
    assert response.status_code == 200
    html = response.text
    assert re.search(r'id="forward-index"[^>]*value="123"', html)
    assert re.search(r'id="forward-t"[^>]*value="456"', html)
    assert 'hx-get="/image/forward/frame"' in html and "throttle:50ms" in html
    assert 'href="/image/forward?index=124&amp;t=456"' in html  # another one
    assert "<script>" not in html and "style=" not in html
    fragment = client.get("/image/forward/frame?index=123&t=456").text
    assert images(fragment)[0].tobytes() == images(html)[0].tobytes()


def test_the_page_defaults_and_the_image_page_links_it(client: TestClient) -> None:
    html = client.get("/image/forward").text
    assert re.search(r'id="forward-t"[^>]*value="500"', html)
    assert 'href="/image/forward"' in client.get("/image").text
    assert client.get("/image/forward?index=9999&t=999").text.count('href="/image/forward?index=0&amp;t=999"') == 1


def test_the_denoise_form_follows_the_slider(client: TestClient) -> None:
    """ "Denoise from here" sends source and start_t to /image: the page renders them, every figure fragment carries
    them out of band, so the form always starts from the picture on screen."""
    html = client.get("/image/forward?index=12&t=345").text
    assert re.search(r'<form id="denoise-form"[^>]*action="/image"', html)
    assert re.search(r'id="denoise-source" name="source" value="12">', html)
    assert re.search(r'id="denoise-start-t" name="start_t" value="345">', html)
    assert 'name="autoplay" value="1"' in html
    fragment = client.get("/image/forward/frame?index=13&t=700").text
    assert 'id="denoise-source" name="source" value="13" hx-swap-oob="true"' in fragment
    assert 'id="denoise-start-t" name="start_t" value="700" hx-swap-oob="true"' in fragment
    # t = 0 is the clean digit: there is nothing to denoise, so the form asks for the least noise there is, t = 1
    assert 'name="start_t" value="1" hx-swap-oob="true"' in client.get("/image/forward/frame?index=13&t=0").text
