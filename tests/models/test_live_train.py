"""The live twins (models.text.live_train): held-out text never reaches a training batch, the same seed gives the
same points, both models learn and stream their points, a too-short text is refused, the turn is found."""

from __future__ import annotations

import itertools

import pytest
import torch

from models.text.live_request import SplitError, split_text, turning_point
from models.text.live_train import Batches, LiveConfig, live_training

TINY = LiveConfig(context=16, width=16, depth=1, heads=1, batch=4, eval_every=5, eval_windows=4, sample_every=2)


def test_held_out_bytes_never_reach_a_training_batch() -> None:
    # the held-out tenth of this text is all 'x' and 'y'; the rest has none
    text = "ab" * 2_250 + "xy" * 250  # 5,000 bytes: the held-out tenth is exactly the 500 of "xy"
    train, held_out = split_text(text, TINY.context)
    assert held_out == b"xy" * 250 and b"x" not in train
    batches = Batches(train, TINY, torch.Generator().manual_seed(3))
    seen = torch.cat([batches.next() for _ in range(500)])
    assert not (seen == ord("x")).any() and not (seen == ord("y")).any()
    assert (seen == ord("a")).any()  # it does draw


def test_the_same_seed_gives_the_same_points_and_both_models_learn() -> None:
    text = "Once upon a time there was a cat. The cat sat on a mat and was happy. " * 40
    first = list(live_training(text, 7, float("inf"), TINY, max_steps=40))
    again = list(live_training(text, 7, float("inf"), TINY, max_steps=40))
    other = list(live_training(text, 8, float("inf"), TINY, max_steps=40))
    strip = [(p.step, p.ar_train, p.ar_held_out, p.diffusion_train, p.diffusion_held_out, p.samples) for p in first]
    assert strip == [(p.step, p.ar_train, p.ar_held_out, p.diffusion_train, p.diffusion_held_out, p.samples) for p in again]
    assert [p.ar_train for p in other] != [p.ar_train for p in first]
    assert [p.step for p in first] == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    assert first[-1].ar_train < first[0].ar_train - 0.5 and first[-1].diffusion_train < first[0].diffusion_train - 0.5
    assert first[-1].epochs > first[1].epochs > 0
    assert set(first[0].samples) == {"prompt", "ar", "diffusion"} and not first[1].samples  # a sample every other point


def test_the_time_budget_ends_the_run() -> None:
    text = "The dog ran to the park with a red ball. " * 60
    points = list(live_training(text, 0, 0.0, TINY))
    assert len(points) == 1 and points[0].step == 0  # nothing but the untrained point fits a zero budget


def test_a_text_too_short_to_split_is_refused_with_the_sizes() -> None:
    with pytest.raises(SplitError, match="at least"):
        split_text("too short", 64)


def test_the_turn_is_the_best_point_once_the_curve_has_risen_since() -> None:
    assert turning_point([3.0, 2.0, 1.5, 1.6, 1.7, 1.8]) == 2
    assert turning_point([3.0, 2.0, 1.5, 1.6, 1.7]) is None  # not yet three points above it
    assert turning_point([3.0, 2.0, 1.5, 1.4]) is None  # still improving
    assert turning_point([3.0, 2.0, 1.5, 1.51, 1.6, 1.52]) is None  # a point within 1% of the best: a plateau, not a turn


def test_it_trains_under_the_engines_inference_mode() -> None:
    # the web engine runs every producer under torch.inference_mode(): training must switch autograd back on
    text = "Once upon a time there was a cat. The cat sat on a mat and was happy. " * 40
    with torch.inference_mode():
        points = list(live_training(text, 7, float("inf"), TINY, max_steps=10))
    outside = list(live_training(text, 7, float("inf"), TINY, max_steps=10))
    assert [p.ar_train for p in points] == [p.ar_train for p in outside] and points[-1].ar_train < points[0].ar_train


def test_the_budget_is_wall_clock_time_evaluations_included() -> None:
    text = "The dog ran to the park with a red ball. " * 60
    points = list(live_training(text, 0, 0.5, TINY))
    assert points[-1].seconds <= 0.5 + 0.5  # at most one interval of steps and one evaluation past it
    assert all(b.seconds > a.seconds for a, b in itertools.pairwise(points))
