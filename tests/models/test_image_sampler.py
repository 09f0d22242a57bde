"""Invariants of the image samplers on a tiny untrained UNet (fast); quality lives in test_quality.py."""

import copy
import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from models.image.model import load_classifier, noise_schedule, untrained_image_model
from models.image.sample import (
    SAMPLERS,
    ImageRequest,
    Meter,
    SamplingError,
    denoise_from,
    inpaint,
    sample_image,
)


@pytest.fixture(scope="module")
def model():
    return untrained_image_model()


@pytest.mark.slow
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_streams_and_ends_clean(model, sampler):
    frames = list(sample_image(model, ImageRequest(sampler=sampler, steps=5, batch=2, seed=1)))
    assert [f.step for f in frames] == list(range(6))
    final = frames[-1]
    assert final.timestep == 0 and final.noise_level == 0.0
    assert final.xt.shape == final.x0.shape == (2, 28, 28) and final.xt.dtype == np.uint8
    levels = [f.noise_level for f in frames]
    assert all(a >= b for a, b in itertools.pairwise(levels))
    assert frames[0].forward_passes == 0 and final.forward_passes == 5  # cond+uncond batched: one pass a step


def test_same_seed_same_frames(model):
    request = ImageRequest(sampler="ddpm", steps=4, seed=11)
    a, b = list(sample_image(model, request)), list(sample_image(model, request))
    assert all(np.array_equal(x.xt, y.xt) and np.array_equal(x.x0, y.x0) for x, y in zip(a, b))
    c = list(sample_image(model, ImageRequest(sampler="ddpm", steps=4, seed=12)))
    assert not np.array_equal(a[-1].xt, c[-1].xt)


def test_denoise_from_starts_part_way(model):
    image = np.zeros((28, 28), np.uint8)
    frames = list(denoise_from(model, image, 7, 300, ImageRequest(steps=10)))
    assert frames[0].timestep <= 300 and frames[-1].timestep == 0 and len(frames) < 11
    assert all(frame.reference is image for frame in frames)


def test_inpainting_keeps_known_pixels_and_shows_jumps(model):
    image = np.full((28, 28), 200, np.uint8)
    keep = np.zeros((28, 28), bool)
    keep[:, :14] = True
    frames = list(inpaint(model, image, keep, ImageRequest(steps=10, seed=3), jump_length=3, jump_n_sample=2))
    assert any(f.note == "jump back" for f in frames)
    final = frames[-1]
    # As diffusers' RePaint pipeline: the last step (at t = 0) returns the clean image, the kept pixels exactly.
    assert final.step == final.total and final.timestep == 0 and final.noise_level == 0.0
    assert final.xt is not None and np.array_equal(final.xt[0][keep], image[keep])
    assert all(f.keep is not None and np.array_equal(f.keep, keep) and f.reference is image for f in frames)


def test_bad_requests_are_refused(model):
    # the request type refuses what it bounds; the sampler what only the model knows (the schedule's length)
    for bad in ({"digit": 10}, {"sampler": "euler"}, {"steps": 0}, {"guidance": float("nan")}, {"batch": 0}):
        with pytest.raises(ValidationError):
            ImageRequest(**bad)
    with pytest.raises(SamplingError, match="steps must be between 1 and 1000"):
        list(sample_image(model, ImageRequest(steps=1001)))


def test_noise_schedule_is_cosine_shaped(model):
    schedule = noise_schedule(model)
    assert schedule.shape == (1000,) and schedule[0] < 0.05 and schedule[-1] > 0.99
    assert np.all(np.diff(schedule) >= 0)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("steps", [1, 2, pytest.param(7, marks=pytest.mark.slow)])
def test_every_step_count_starts_from_pure_noise(model, sampler, steps):
    frames = list(sample_image(model, ImageRequest(sampler=sampler, steps=steps)))
    # DPM-Solver++ starts at t=995: the log-SNR is clipped there for the cosine schedule.
    assert frames[0].timestep >= 995 and frames[0].noise_level > 0.99
    assert len(frames) == steps + 1 and frames[-1].timestep == 0


@pytest.fixture(scope="module")
def classifier():
    return load_classifier(Path(__file__).resolve().parents[2] / "models" / "checkpoints" / "digit-classifier")


@pytest.mark.real_model
@pytest.mark.parametrize(("name", "full_size_convs"), [("digit-classifier", 2), ("digit-meter", 1)])
def test_the_meter_gives_the_classifiers_probabilities(name, full_size_convs):
    """The meter runs a copy with batch norm folded in and channels-last activations: the same numbers, for the
    scoring classifier and for the meter's own narrower one (one convolution at full size)."""
    classifier = load_classifier(Path(__file__).resolve().parents[2] / "models" / "checkpoints" / name)
    assert classifier.config.full_size_convs == full_size_convs
    convs = [layer for layer in classifier.convs if isinstance(layer, torch.nn.Conv2d)]
    assert len(convs) == full_size_convs + 2
    generator = torch.Generator().manual_seed(0)
    x0 = torch.cat([torch.randn(4, 1, 28, 28, generator=generator).mul(scale).clamp(-1, 1) for scale in (0.3, 1, 3)])
    expected = classifier.probabilities(x0)
    meter = Meter(classifier)
    assert meter.network is not classifier
    got = torch.tensor(meter(x0))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 / 2 + 1e-6)  # rounded to 4 places
    assert got.tolist() == [[round(p, 4) for p in row] for row in expected.tolist()]


@pytest.mark.real_model
def test_the_meter_follows_the_classifiers_weights(classifier):
    changed = copy.deepcopy(classifier)
    first = Meter(changed)
    assert Meter(changed).network is first.network  # made once per classifier
    with torch.no_grad():
        changed.head.bias.add_(torch.arange(10.0))  # a training step, in place
    x0 = torch.zeros(1, 1, 28, 28)
    assert Meter(changed).network is not first.network
    assert Meter(changed)(x0) == tuple(tuple(round(p, 4) for p in row) for row in changed.probabilities(x0).tolist())
    changed.train()  # batch statistics: nothing to fold, the classifier itself runs
    assert Meter(changed).network is changed
    assert Meter(None)(x0) == ()


@pytest.mark.real_model
def test_frames_carry_the_meter(model, classifier):
    metered = dataclasses.replace(model, classifier=classifier)
    frames = list(sample_image(metered, ImageRequest(steps=3, batch=2)))
    assert frames[0].digit_probabilities == ()
    for frame in frames[1:]:
        assert len(frame.digit_probabilities) == 2 and all(abs(sum(row) - 1) < 1e-3 for row in frame.digit_probabilities)


def test_a_classifier_needs_a_full_size_convolution():
    from models.image.classifier import ClassifierConfig, DigitClassifier

    with pytest.raises(ValueError, match="at least one full-size convolution"):
        DigitClassifier(ClassifierConfig(full_size_convs=0))
