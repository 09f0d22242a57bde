"""The image lab's model side: the mask's wire form, the lab fields of an image request, and (on the committed
checkpoints) denoising a held-out digit from t and inpainting it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from models.image.data import HELD_OUT_DIGITS, held_out_digit
from models.image.forward import forward_noise
from models.image.masks import MASK_CHARS, PIXELS, PRESETS, MaskError, decode_mask, encode_mask, preset_mask
from models.image.model import ImageModel, load_image_model
from models.image.request import ImageRequest, lab_problem
from models.image.sample import sample_image, sample_request, start_step_for
from models.requests import SamplingError

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"


# ---- the mask's wire form


def test_masks_round_trip_and_fit_a_url() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        fill = rng.random((28, 28)) < rng.random()
        fill[rng.integers(28), rng.integers(28)] = True
        text = encode_mask(fill)
        assert len(text) == MASK_CHARS == 131 and set(text) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
        assert np.array_equal(decode_mask(text), fill)


def test_one_pixel_is_the_smallest_mask_and_the_bit_order_is_row_major() -> None:
    fill = np.zeros((28, 28), bool)
    fill[0, 0] = True
    assert encode_mask(fill) == "g" + "A" * (MASK_CHARS - 1)  # 0b10000000 first: most significant bit first
    fill[0, 0], fill[27, 27] = False, True
    assert decode_mask(encode_mask(fill))[27, 27] and decode_mask(encode_mask(fill)).sum() == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A" * (MASK_CHARS - 1), f"got {MASK_CHARS - 1} characters"),
        ("g" + "A" * MASK_CHARS, f"got {MASK_CHARS + 1} characters"),
        ("", "got 0 characters"),
        ("g" + "A" * (MASK_CHARS - 2) + "=", "'=' is not a base64url character"),
        ("g" + "A" * (MASK_CHARS - 2) + "+", "'+' is not a base64url character"),
        ("A" * MASK_CHARS, "fills no pixel"),
        ("A" * (MASK_CHARS - 1) + "B", "bits set past pixel 784"),  # 131 characters carry 786 bits
    ],
)
def test_malformed_masks_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(MaskError, match=message.replace("(", r"\(").replace("+", r"\+")):
        decode_mask(text)


def test_presets() -> None:
    sizes = {name: int(preset_mask(name).sum()) for name in PRESETS}
    assert sizes["top"] == sizes["left"] == PIXELS // 2 and sizes["centre"] == 14 * 14
    assert preset_mask("top")[:14].all() and not preset_mask("top")[14:].any()
    assert preset_mask("left")[:, :14].all() and not preset_mask("left")[:, 14:].any()
    assert 0 < sizes["blocks"] <= 4 * 49 and np.array_equal(preset_mask("blocks", 3), preset_mask("blocks", 3))
    assert not np.array_equal(preset_mask("blocks", 3), preset_mask("blocks", 4))
    with pytest.raises(MaskError, match="unknown preset"):
        preset_mask("everything")


# ---- the request


@pytest.mark.parametrize(
    ("field", "good", "bad"), [("source", (0, HELD_OUT_DIGITS - 1), (-1, HELD_OUT_DIGITS)), ("start_t", (1, 999), (0, 1000))]
)
def test_lab_fields_are_bounded_at_the_edges(field: str, good: tuple[int, int], bad: tuple[int, int]) -> None:
    for value in good:
        ImageRequest(**{field: value, "source": 0} if field == "start_t" else {field: value})
    for value in bad:
        with pytest.raises(ValidationError):
            ImageRequest(**{field: value})
    with pytest.raises(ValidationError):
        ImageRequest(mask="A" * (MASK_CHARS + 1))  # bounded before it is read


def test_lab_fields_must_make_one_run() -> None:
    mask = encode_mask(preset_mask("top"))
    assert lab_problem(ImageRequest()) is None
    assert lab_problem(ImageRequest(source=3)) is None  # from t = 999
    assert lab_problem(ImageRequest(source=3, start_t=400)) is None
    assert lab_problem(ImageRequest(source=3, mask=mask)) is None
    start_alone = lab_problem(ImageRequest(start_t=400))
    assert start_alone is not None and start_alone[0] == "start_t" and "start_t needs a source" in start_alone[1]
    mask_alone = lab_problem(ImageRequest(mask=mask))
    assert mask_alone is not None and "mask needs a source" in mask_alone[1]
    both = lab_problem(ImageRequest(source=1, start_t=5, mask=mask))
    assert both is not None and "cannot be combined" in both[1]
    assert lab_problem(ImageRequest(source=1, mask="A" * MASK_CHARS)) == (
        "mask",
        "mask fills no pixel: paint at least one pixel to fill",
    )


def test_a_run_from_noise_dumps_as_before_the_lab() -> None:
    """Unused lab fields are left out of dumps: the same cache keys, URLs and traces as before they existed."""
    assert ImageRequest().model_dump(mode="json") == {"digit": 3, "guidance": 1.0, "sampler": "ddim", "steps": 50, "seed": 0}
    assert ImageRequest(source=4, start_t=200).model_dump()["start_t"] == 200


# ---- on the committed checkpoints


@pytest.fixture(scope="module")
def model() -> ImageModel:
    return load_image_model(CHECKPOINTS / "image-ddpm", CHECKPOINTS / "digit-classifier")


@pytest.mark.real_model
@pytest.mark.slow
def test_denoising_from_t999_is_a_full_run_from_that_noise(model: ImageModel) -> None:
    """At t = 999 nothing of the digit is left (sqrt(alpha_bar) ~ 1e-4): denoising from there is the full run from
    the same noise, to within a grey level."""
    request = ImageRequest(digit=None, sampler="ddim", steps=20, seed=0)
    lab = list(sample_request(model, request.model_copy(update={"source": 11, "start_t": 999})))
    start = torch.from_numpy(forward_noise(11).astype(np.float32))[None, None]
    full = list(sample_image(model, request, start=start))
    assert [f.step for f in lab] == [f.step for f in full] == list(range(21)) and lab[0].timestep == 999
    assert np.abs(lab[-1].xt.astype(int) - full[-1].xt.astype(int)).max() <= 1
    assert lab[-1].reference is not None and np.array_equal(lab[-1].reference, held_out_digit(11)[0])


@pytest.mark.real_model
@pytest.mark.slow
def test_denoising_from_a_low_t_comes_back_to_the_digit_and_from_a_high_t_drifts(model: ImageModel) -> None:
    image, label = held_out_digit(0)
    drift = {}
    for t in (200, 950):
        frames = list(sample_request(model, ImageRequest(digit=None, steps=20, source=0, start_t=t)))
        assert frames[0].timestep <= t and frames[-1].timestep == 0
        drift[t] = float(np.abs(frames[-1].xt[0].astype(int) - image.astype(int)).mean())
        if t == 200:
            assert max(range(10), key=frames[-1].digit_probabilities[0].__getitem__) == label
    assert drift[200] < 10 < drift[950]  # grey levels: back to the digit from t = 200, far from it from t = 950


@pytest.mark.real_model
def test_a_start_below_the_samplers_last_step_is_refused_clearly(model: ImageModel) -> None:
    assert start_step_for(model, ImageRequest(steps=50), 500) == (25, 499)
    with pytest.raises(SamplingError, match=r"start_t 5 is below DDIM's last step at 50 steps \(t = 19\)"):
        list(sample_request(model, ImageRequest(source=0, start_t=5)))


@pytest.mark.real_model
@pytest.mark.slow
@pytest.mark.parametrize("preset", ["top", "centre"])
def test_inpainting_keeps_the_known_pixels_exactly(model: ImageModel, preset: str) -> None:
    """The bound: the kept pixels' largest change at the end is at most 1 grey level (uint8 rounding); measured 0."""
    image, _label = held_out_digit(4)
    fill = preset_mask(preset)
    frames = list(sample_request(model, ImageRequest(digit=None, steps=20, seed=1, source=4, mask=encode_mask(fill))))
    final = frames[-1]
    assert final.step == final.total == len(frames) - 1 and final.timestep == 0
    assert any(f.note == "jump back" for f in frames)
    assert np.abs(final.xt[0][~fill].astype(int) - image[~fill].astype(int)).max() <= 1
    assert np.abs(final.xt[0][fill].astype(int) - image[fill].astype(int)).mean() > 1  # the filled ones were redrawn
