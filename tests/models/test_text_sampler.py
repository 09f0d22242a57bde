"""Invariants of the text samplers, on tiny untrained models (the model is not the point here)."""

import itertools

import pytest
import torch
from pydantic import ValidationError

from models.frames import BLANK, FIXED, NEW, REMASKED
from models.requests import SamplingError
from models.text.decoding import REMASK_SCHEDULES, STRATEGIES, TextRequest
from models.text.model import untrained_text_model
from models.text.sample import sample_autoregressive, sample_diffusion


@pytest.fixture(scope="module")
def diffusion():
    return untrained_text_model(causal=False)


@pytest.fixture(scope="module")
def ar():
    return untrained_text_model(causal=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_blanks_never_increase_and_all_fill(diffusion, strategy):
    frames = list(sample_diffusion(diffusion, TextRequest(prompt="Hi", length=17, steps=5, strategy=strategy, seed=3)))
    masked = [f.masked for f in frames]
    assert masked[0] == 17 and masked[-1] == 0
    assert all(a >= b for a, b in itertools.pairwise(masked))
    assert len(frames) == 6 and frames[-1].step == frames[-1].total == 5
    assert all(not f.remasked for f in frames)


def test_each_step_is_one_forward_pass(diffusion):
    frames = list(sample_diffusion(diffusion, TextRequest(length=8, steps=4)))
    assert [f.forward_passes for f in frames] == [0, 1, 2, 3, 4]


def test_same_seed_same_frames_and_other_seed_differs(diffusion):
    request = TextRequest(length=12, steps=6, temperature=1.0, strategy="random", seed=7)
    first, second = list(sample_diffusion(diffusion, request)), list(sample_diffusion(diffusion, request))
    assert first == second
    other = list(sample_diffusion(diffusion, TextRequest(length=12, steps=6, temperature=1.0, strategy="random", seed=8)))
    assert other != first


def test_infill_never_changes_fixed_tokens(diffusion):
    request = TextRequest(prompt="The cat ___ on the ___ mat.", length=4, steps=4, seed=1)
    frames = list(sample_diffusion(diffusion, request))
    fixed_first = [(i, t.token_id) for i, t in enumerate(frames[0].tokens) if t.state == FIXED]
    assert len([t for t in frames[0].tokens if t.state == BLANK]) == 8
    for frame in frames:
        assert [(i, frame.tokens[i].token_id) for i, _ in fixed_first] == fixed_first
        assert all(frame.tokens[i].state == FIXED for i, _ in fixed_first)
    assert frames[-1].masked == 0
    assert frames[-1].text.startswith("The cat") and frames[-1].text.endswith(" mat.")


@pytest.mark.parametrize("schedule", [s for s in REMASK_SCHEDULES if s != "none"])
def test_remasking_emits_events_and_still_finishes(diffusion, schedule):
    request = TextRequest(length=24, steps=12, remask=schedule, seed=2)
    frames = list(sample_diffusion(diffusion, request, remask_rate=0.2))
    remasked = [p for f in frames for p in f.remasked]
    assert remasked, "remasking sent nothing back"
    for frame in frames:
        for position in frame.remasked:
            assert frame.tokens[position].state == REMASKED and frame.tokens[position].token_id is None
    assert frames[-1].masked == 0
    assert max(t.remask_count for t in frames[-1].tokens) >= 1


def test_block_mode_fills_blocks_in_order(diffusion):
    request = TextRequest(prompt="A", length=12, steps=6, block_length=4, seed=5)
    frames = list(sample_diffusion(diffusion, request))
    start = next(i for i, t in enumerate(frames[0].tokens) if t.state != FIXED)
    blocks = [range(start + k * 4, start + (k + 1) * 4) for k in range(3)]
    for frame in frames:
        filled = [all(frame.tokens[i].token_id is not None for i in b) for b in blocks]
        touched = [any(frame.tokens[i].token_id is not None for i in b) for b in blocks]
        for k in range(1, 3):
            assert not touched[k] or filled[k - 1], f"block {k} started before block {k - 1} was full"
    assert frames[-1].masked == 0


def test_new_tokens_are_marked_and_carry_confidence(diffusion):
    frames = list(sample_diffusion(diffusion, TextRequest(length=6, steps=3)))
    for frame in frames[1:]:
        assert frame.committed
        for position in frame.committed:
            token = frame.tokens[position]
            assert token.state == NEW and 0 < token.confidence <= 1 and token.committed_at == frame.step
    blanks = [t for t in frames[1].tokens if t.state == BLANK]
    assert blanks and all(t.guess != "" and len(t.alternatives) == 5 for t in blanks)


def test_autoregressive_commits_one_token_per_step_left_to_right(ar):
    frames = list(sample_autoregressive(ar, TextRequest(prompt="Once", length=7, seed=0)))
    assert len(frames) == 8 and frames[-1].masked == 0
    for frame in frames[1:]:
        assert len(frame.committed) == 1 and frame.forward_passes == frame.step
    positions = [f.committed[0] for f in frames[1:]]
    assert positions == sorted(positions) and len(set(positions)) == 7


def test_requests_beyond_the_context_are_refused(diffusion):
    with pytest.raises(SamplingError, match="reads at most"):
        list(sample_diffusion(diffusion, TextRequest(length=diffusion.context + 1)))
    with pytest.raises(SamplingError, match="remask_rate"):
        list(sample_diffusion(diffusion, TextRequest(remask="cap"), remask_rate=1.5))


def test_the_request_type_refuses_what_it_bounds():
    with pytest.raises(ValidationError, match="strategy"):
        TextRequest(strategy="loudest")
    with pytest.raises(ValidationError, match="temperature"):
        TextRequest(temperature=float("nan"))


def test_each_sampler_needs_its_model(diffusion, ar):
    with pytest.raises(SamplingError):
        list(sample_autoregressive(diffusion, TextRequest()))
    with pytest.raises(SamplingError):
        list(sample_diffusion(ar, TextRequest()))


@pytest.mark.parametrize(("length", "block", "steps"), [(28, 4, 32), (12, 4, 6), (10, 3, 7)])
def test_blocks_share_exactly_the_requested_steps(diffusion, length, block, steps):
    frames = list(sample_diffusion(diffusion, TextRequest(length=length, steps=steps, block_length=block)))
    assert frames[-1].total == steps and len(frames) == steps + 1 and frames[-1].masked == 0


def test_a_draw_follows_each_rows_distribution_and_never_picks_a_token_of_probability_zero() -> None:
    from models.text.sample import _draw

    rows = torch.tensor([[0.1, 0.0, 0.6, 0.3], [0.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.0, 0.0]])
    draws = 40_000
    drawn = _draw(rows.repeat(draws, 1), 1.0, torch.Generator().manual_seed(0)).view(draws, 3)
    for row in range(3):
        shares = torch.bincount(drawn[:, row], minlength=4).double() / draws
        assert shares[rows[row] == 0].sum() == 0
        # four standard errors of a share at 40,000 draws is at most 0.01
        assert torch.allclose(shares, rows[row].double(), atol=0.01), (row, shares)


def test_a_draw_is_the_same_for_the_same_seed_and_the_argmax_at_temperature_zero() -> None:
    from models.text.sample import _draw

    probs = torch.softmax(torch.randn(64, 2048, generator=torch.Generator().manual_seed(1)), dim=-1)
    first = _draw(probs, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(first, _draw(probs, 1.0, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, _draw(probs, 1.0, torch.Generator().manual_seed(8)))
    assert torch.equal(_draw(probs, 0.0, torch.Generator()), probs.argmax(-1))
