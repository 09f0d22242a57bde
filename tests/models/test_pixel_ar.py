"""The image race's autoregressive model: causal masking, exact cropped passes, raster-order painting that never
rewrites a pixel, forced pixels, and a checkpoint round trip; and the race itself on the committed DDPM."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoints import CHECKPOINT_ROOT, save_weights, write_json, write_manifest
from models.image.data import EVALUATION_MNIST, load_split
from models.image.pixel_ar import (
    IMAGE_SIZE,
    PixelARConfig,
    load_pixel_ar,
    pixel_logits,
    sample_batch,
    sample_pixels,
    untrained_pixel_ar,
)
from models.image.race import AUTOREGRESSIVE, DIFFUSION, MISTAKE_PIXELS, mistake_step, sample_image_race, signal_at
from models.image.request import DEFAULT_MISTAKE_TIMING, MISTAKE_TIMINGS, ImageRaceRequest, MistakeTiming
from models.image.train_pixel_ar import main as train_main
from models.image.train_pixel_ar import selection_split

SMALL = PixelARConfig(levels=4, channels=8, layers=3, kernel=5)


@pytest.mark.parametrize("k", [0, 1, 27, 28, 29, 300, 783])
def test_changing_pixel_k_never_changes_the_prediction_for_pixels_up_to_k(k: int) -> None:
    model = untrained_pixel_ar(SMALL, seed=1)
    generator = torch.Generator().manual_seed(k)
    pixels = torch.randint(0, 4, (1, IMAGE_SIZE, IMAGE_SIZE), generator=generator)
    label = torch.tensor([5])
    changed = pixels.clone().view(-1)
    changed[k] = (changed[k] + 1) % 4
    with torch.inference_mode():
        before = model.network(pixels, label).amax(1).view(-1)
        after = model.network(changed.view(1, IMAGE_SIZE, IMAGE_SIZE), label).amax(1).view(-1)
    assert torch.equal(before[: k + 1], after[: k + 1])
    if k < 700:
        assert not torch.equal(before[k + 1 :], after[k + 1 :])  # and the pixels after it do read it


def test_a_pass_over_the_rows_a_pixel_can_read_gives_the_full_images_logits() -> None:
    model = untrained_pixel_ar(PixelARConfig(), seed=2)
    pixels = torch.randint(0, 4, (1, IMAGE_SIZE, IMAGE_SIZE), generator=torch.Generator().manual_seed(0))
    label = torch.tensor([1])
    with torch.inference_mode():
        full = model.network(pixels, label)[0]
        for row, column in [(0, 0), (3, 27), (12, 5), (13, 0), (27, 27)]:
            torch.testing.assert_close(
                pixel_logits(model.network, pixels, label, row, column), full[:, row, column], rtol=0, atol=1e-5
            )


@pytest.mark.slow
def test_painting_goes_in_raster_order_and_never_rewrites_a_pixel() -> None:
    model = untrained_pixel_ar(SMALL, seed=3)
    forced = {100: 3, 101: 3}
    frames = list(sample_pixels(model, digit=4, seed=0, forced=forced, every=37))
    assert frames[0].painted == 0 and frames[-1].painted == IMAGE_SIZE * IMAGE_SIZE
    assert [f.painted for f in frames] == sorted(f.painted for f in frames)
    final = frames[-1].pixels.reshape(-1)
    for frame in frames:
        flat = frame.pixels.reshape(-1)
        assert np.array_equal(flat[: frame.painted], final[: frame.painted])  # painted: final already
        assert not flat[frame.painted :].any()  # not yet painted: blank
    assert final[100] == final[101] == 255 and frames[-1].forced == (100, 101)
    assert frames[-1].passes == IMAGE_SIZE * IMAGE_SIZE - 2  # a forced pixel takes no pass


@pytest.mark.slow
def test_the_batched_sampler_draws_what_the_streaming_one_draws_for_the_same_pixels() -> None:
    model = untrained_pixel_ar(SMALL, seed=4)
    batch = sample_batch(model.network, torch.tensor([2, 7]), torch.Generator().manual_seed(0), forced={0: 3})
    assert batch.shape == (2, IMAGE_SIZE, IMAGE_SIZE) and int(batch[0, 0, 0]) == int(batch[1, 0, 0]) == 3
    assert batch.min() >= 0 and batch.max() <= 3


def test_a_checkpoint_round_trips(tmp_path: Path) -> None:
    model = untrained_pixel_ar(SMALL, seed=5)
    write_json(tmp_path / "config.json", SMALL.to_dict())
    save_weights(model.network, tmp_path / "model.safetensors")
    write_manifest(tmp_path)
    loaded = load_pixel_ar(tmp_path)
    pixels = torch.randint(0, 4, (2, IMAGE_SIZE, IMAGE_SIZE), generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 9])
    with torch.inference_mode():
        assert torch.equal(loaded.network(pixels, labels), model.network(pixels, labels))


@pytest.fixture(scope="module")
def ddpm():
    from models.image.model import load_image_model

    return load_image_model(CHECKPOINT_ROOT / "image-ddpm", CHECKPOINT_ROOT / "digit-classifier")


def pixel_model():
    folder = CHECKPOINT_ROOT / "image-pixel-ar"
    return load_pixel_ar(folder) if folder.exists() else untrained_pixel_ar(SMALL)


@pytest.mark.real_model
@pytest.mark.slow
def test_a_race_completes_with_both_final_images(ddpm) -> None:
    frames = list(sample_image_race(pixel_model(), ddpm, ImageRaceRequest(digit=2, steps=10, seed=1)))
    last = frames[-1]
    assert last.step == last.total == len(frames) - 1
    ar, diffusion = last.lanes
    assert (ar.name, diffusion.name) == (AUTOREGRESSIVE, DIFFUSION)
    assert ar.finished and ar.passes == IMAGE_SIZE * IMAGE_SIZE and ar.cursor is None
    assert diffusion.finished and diffusion.passes == 10 and diffusion.guess is not None
    assert ar.image.shape == diffusion.image.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert len(diffusion.digit_probabilities) == 10 and len(ar.digit_probabilities) == 10
    assert [f.clock for f in frames] == sorted(f.clock for f in frames)
    painted = [f.lanes[0] for f in frames]  # the AR lane never rewrites a pixel it painted
    for before, after in itertools.pairwise(painted):
        done = before.cursor if before.cursor is not None else IMAGE_SIZE * IMAGE_SIZE
        assert np.array_equal(before.image.reshape(-1)[:done], after.image.reshape(-1)[:done])


@pytest.mark.real_model
@pytest.mark.slow
def test_the_forced_mistake_is_in_both_lanes_from_the_step_it_is_applied(ddpm) -> None:
    steps = 10
    frames = list(sample_image_race(pixel_model(), ddpm, ImageRaceRequest(digit=1, steps=steps, seed=2, mistake=True)))
    ink = [f for f in frames if f.lanes[1].passes >= mistake_step(steps)]
    assert ink and all(f.lanes[1].forced == MISTAKE_PIXELS for f in ink)
    assert all(not f.lanes[1].forced for f in frames if f.lanes[1].passes < mistake_step(steps))
    applied = next(f for f in frames if f.lanes[1].passes == mistake_step(steps))
    clean = next(
        f
        for f in list(sample_image_race(pixel_model(), ddpm, ImageRaceRequest(digit=1, steps=steps, seed=2)))
        if f.lanes[1].passes == mistake_step(steps)
    )
    stroke = list(MISTAKE_PIXELS)
    assert applied.lanes[1].image.reshape(-1)[stroke].mean() > clean.lanes[1].image.reshape(-1)[stroke].mean()  # x_t got ink
    last = frames[-1].lanes[0]
    assert last.forced == MISTAKE_PIXELS and (last.image.reshape(-1)[stroke] == 255).all()
    assert last.passes == IMAGE_SIZE * IMAGE_SIZE - len(MISTAKE_PIXELS)


def diffusion_lanes(ddpm, timing: MistakeTiming | None, steps: int = 10) -> list:
    request = ImageRaceRequest(digit=4, steps=steps, seed=3, mistake=timing is not None, mistake_at=timing or "middle")
    frames = sample_image_race(pixel_model(), ddpm, request)
    lanes, seen = [], set()
    for frame in frames:  # one lane a DDPM pass (later frames only move the AR lane)
        lane = frame.lanes[1]
        if lane.passes not in seen:
            seen.add(lane.passes)
            lanes.append(lane)
    return lanes


@pytest.mark.real_model
@pytest.mark.slow
def test_the_timing_knob_moves_the_step_the_stroke_enters_the_ddpm(ddpm) -> None:
    steps = 10
    clean = diffusion_lanes(ddpm, None, steps)
    stroke = list(MISTAKE_PIXELS)
    entered = {}
    for timing in MISTAKE_TIMINGS:
        lanes = diffusion_lanes(ddpm, timing, steps)
        at = mistake_step(steps, timing)
        # the DDPM's state is the clean run's up to the step, and carries the stroke's ink from it on
        for lane, same in zip(lanes, clean):
            if lane.passes < at:
                assert np.array_equal(lane.image, same.image) and not lane.forced
            else:
                assert lane.forced == MISTAKE_PIXELS
        first = next(lane for lane in lanes if lane.passes == at)
        assert first.image.reshape(-1)[stroke].mean() > clean[at].image.reshape(-1)[stroke].mean() + 30
        entered[timing] = at
    assert entered == {"early": 2, "middle": 5, "late": 8}


def test_mistake_steps_at_the_edges_leave_a_step_after_the_stroke_when_there_is_one() -> None:
    assert [mistake_step(50, timing) for timing in MISTAKE_TIMINGS] == [10, 25, 40]
    assert mistake_step(50) == mistake_step(50, DEFAULT_MISTAKE_TIMING) == 25
    assert [mistake_step(2, timing) for timing in MISTAKE_TIMINGS] == [1, 1, 1]
    assert [mistake_step(3, timing) for timing in MISTAKE_TIMINGS] == [1, 2, 2]
    assert [mistake_step(1, timing) for timing in MISTAKE_TIMINGS] == [1, 1, 1]
    with pytest.raises(ValueError, match="at least 1 step"):
        mistake_step(0)


@pytest.mark.real_model
def test_the_later_the_timing_the_more_of_the_stroke_the_state_keeps(ddpm) -> None:
    found = [signal_at(ddpm, 50, timing) for timing in MISTAKE_TIMINGS]
    assert [t for t, _ in found] == sorted((t for t, _ in found), reverse=True)
    assert [signal for _, signal in found] == sorted(signal for _, signal in found)
    (t_early, early), (t_middle, middle), (t_late, late) = found
    assert 790 <= t_early <= 810 and 0.25 < early < 0.35  # a hint under the noise
    assert 490 <= t_middle <= 510 and 0.65 < middle < 0.75  # as loud as the noise
    assert 190 <= t_late <= 210 and late > 0.9
    assert signal_at(ddpm, 1, "middle") == (-1, 1.0)  # a one-step run: after its only step, the final image


@pytest.mark.real_model
@pytest.mark.slow
def test_a_one_step_race_gets_the_stroke_at_full_ink_in_its_final_image(ddpm) -> None:
    frames = list(sample_image_race(pixel_model(), ddpm, ImageRaceRequest(digit=0, steps=1, seed=0, mistake=True)))
    last = frames[-1].lanes[1]
    assert last.forced == MISTAKE_PIXELS and (last.image.reshape(-1)[list(MISTAKE_PIXELS)] == 255).all()


# ---------------------------------------------------------------------------------------------------------
# The training's selection split


def test_the_selection_split_holds_every_digit_of_the_class_sorted_train10k() -> None:
    _, labels = load_split(EVALUATION_MNIST, "train10k")
    assert (np.diff(labels) >= 0).all()  # sorted by class: the last 500 are all 9s, the split this replaces
    train, valid = selection_split(len(labels), 500, seed=0)
    held = np.bincount(labels[valid.numpy()], minlength=10)
    assert len(valid) == 500 and (held > 0).all() and held.max() < 100  # every digit, none dominating
    assert len(train) == len(labels) - 500 and len(set(train.tolist()) | set(valid.tolist())) == len(labels)
    again, _ = selection_split(len(labels), 500, seed=0)
    assert torch.equal(again, train)  # seeded
    assert not torch.equal(selection_split(len(labels), 500, seed=1)[1], valid)


def test_the_selection_split_refuses_sizes_that_leave_either_side_empty(tmp_path: Path) -> None:
    assert len(selection_split(10, 1, 0)[1]) == 1 and len(selection_split(10, 9, 0)[0]) == 1  # the edges that work
    for valid in (0, 10, -1):
        with pytest.raises(ValueError, match="between 1 and 9 digits"):
            selection_split(10, valid, 0)
    with pytest.raises(SystemExit, match="between 1 and 9999 digits, got 10000"):
        train_main(["--data", str(EVALUATION_MNIST), "--out", str(tmp_path), "--valid", "10000", "--steps", "1"])
