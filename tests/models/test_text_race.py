"""The race and what it rests on: the twin's KV cache, the shared clock, the per-lane counters, infill.

The cache is checked on the committed twin (the model people see) and on a tiny untrained one; the race
clock on tiny untrained models (the model is not the point there)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from models.requests import SamplingError
from models.text.decisions import COMMIT, REMASK, DecisionLog
from models.text.decoding import TextRequest
from models.text.model import load_text_model, untrained_text_model
from models.text.race import AUTOREGRESSIVE, DIFFUSION, LaneSpec, race_frames, sample_race, split_gap
from models.text.sample import sample_autoregressive

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"


@pytest.fixture(scope="module")
def twin():
    return load_text_model(CHECKPOINTS / "text-ar")


@pytest.fixture(scope="module")
def tiny():
    return untrained_text_model(causal=False), untrained_text_model(causal=True)


def cached_logits(network, ids: torch.Tensor, prefill: int) -> torch.Tensor:
    """The prompt in one call, then one token a call, as the sampler reads them."""
    cache = network.new_cache()
    outs = [network(ids[:, :prefill], cache)]
    outs += [network(ids[:, i : i + 1], cache) for i in range(prefill, ids.shape[1])]
    return torch.cat(outs, dim=1)


@pytest.mark.real_model
@pytest.mark.parametrize("prefill", [1, 5, 17])
def test_cached_logits_equal_the_uncached_forward_on_the_committed_twin(twin, prefill: int) -> None:
    ids = torch.tensor(
        [
            twin.tokenizer.encode(
                "Once upon a time there was a little girl named Lily who loved to play outside with her dog in the big green park"
            ).ids
        ]
    )
    with torch.inference_mode():
        full = twin.network(ids)
        cached = cached_logits(twin.network, ids, prefill)
    assert cached.shape == full.shape
    assert (cached - full).abs().max().item() < 1e-4


def test_a_chunk_after_the_cache_sees_the_past_and_itself_causally(tiny) -> None:
    _, ar = tiny
    ids = torch.randint(2, ar.network.config.vocab_size, (1, 30), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        full = ar.network(ids)
        cache = ar.network.new_cache()
        parts = [ar.network(ids[:, :10], cache), ar.network(ids[:, 10:25], cache), ar.network(ids[:, 25:], cache)]
    assert cache.length == 30
    assert (torch.cat(parts, dim=1) - full).abs().max().item() < 1e-4


def test_the_cache_refuses_the_bidirectional_model_and_the_context_edge(tiny) -> None:
    diffusion, ar = tiny
    with pytest.raises(ValueError, match="needs the causal model"):
        diffusion.network(torch.tensor([[3, 4]]), diffusion.network.new_cache())
    cache = ar.network.new_cache()
    context = ar.network.config.context
    with torch.inference_mode():
        ar.network(torch.zeros(1, context, dtype=torch.long), cache)  # exactly full
        with pytest.raises(ValueError, match="exceeds the model context"):
            ar.network(torch.zeros(1, 1, dtype=torch.long), cache)


@pytest.mark.real_model
def test_cached_and_uncached_sampling_write_the_same_text(twin) -> None:
    request = TextRequest(prompt="Once upon a time", length=24, seed=5)
    cached = list(sample_autoregressive(twin, request))
    uncached = list(sample_autoregressive(twin, request, use_cache=False))
    assert [t.token_id for t in cached[-1].tokens] == [t.token_id for t in uncached[-1].tokens]


def test_race_frames_carry_both_lanes_on_one_clock(tiny) -> None:
    diffusion, ar = tiny
    frames = list(sample_race(diffusion, ar, TextRequest(prompt="Hi there", length=12, steps=4, block_length=0, seed=2)))
    assert [f.step for f in frames] == list(range(13)) and all(f.total == 12 for f in frames)
    for frame in frames:
        lanes = {lane.name: lane for lane in frame.lanes}
        assert set(lanes) == {DIFFUSION, AUTOREGRESSIVE}
        d, a = lanes[DIFFUSION], lanes[AUTOREGRESSIVE]
        assert a.frame.forward_passes == a.frame.decided == frame.step  # one token a pass
        assert d.frame.forward_passes == min(frame.step, 4)  # one pass a step, then finished
        assert d.finished == (frame.step >= 4) and a.finished == (frame.step == 12)
        assert d.wall_ms >= 0 and a.wall_ms >= 0
    last = {lane.name: lane for lane in frames[-1].lanes}
    assert last[DIFFUSION].frame.decided == last[AUTOREGRESSIVE].frame.decided == 12
    assert last[DIFFUSION].frame.forward_passes == 4 and last[AUTOREGRESSIVE].frame.forward_passes == 12
    assert frames[4].lanes[0].frame.decided == 12  # diffusion decided everything by pass 4: 3 tokens a pass


def test_infill_race_gives_the_ar_lane_only_the_left_text(tiny) -> None:
    diffusion, ar = tiny
    read: list[list[int]] = []
    hook = ar.network.register_forward_pre_hook(lambda _m, args: read.append(args[0][0].tolist()))
    try:
        frames = list(
            sample_race(diffusion, ar, TextRequest(prompt="Tom had a ball. ___ He was sad.", length=6, steps=3, seed=1))
        )
    finally:
        hook.remove()
    lanes = {lane.name: lane for lane in frames[-1].lanes}
    left = ar.tokenizer.encode("Tom had a ball. ").ids
    generated = [t.token_id for t in lanes[AUTOREGRESSIVE].frame.tokens][len(left) :]
    # each token read once: the left text, then its own output
    assert list(itertools.chain.from_iterable(read)) == left + generated[:-1]
    assert lanes[AUTOREGRESSIVE].unseen == " He was sad." and lanes[DIFFUSION].unseen == ""
    right = diffusion.tokenizer.encode(" He was sad.").ids
    assert [t.token_id for t in lanes[DIFFUSION].frame.tokens][-len(right) :] == right  # fixed text kept


def test_the_race_takes_one_gap_with_text_before_it() -> None:
    assert split_gap("no gap") is None
    assert split_gap("a ___ b") == ("a ", " b")
    with pytest.raises(SamplingError, match="has 2 '___' marks"):
        split_gap("a ___ b ___ c")
    with pytest.raises(SamplingError, match="needs text before the gap"):
        split_gap("___ b")


def test_a_stop_ends_the_race_within_a_tick(tiny) -> None:
    diffusion, ar = tiny
    ticks: list[int] = []
    for frame in sample_race(diffusion, ar, TextRequest(length=20, steps=10), should_stop=lambda: len(ticks) >= 3):
        ticks.append(frame.step)
    assert ticks == [0, 1, 2]


def test_race_frames_of_lanes_that_end_early() -> None:
    def lane(total: int):
        from models.frames import BLANK, NEW, TextFrame, TextToken

        yield TextFrame(0, total, tuple(TextToken(BLANK, None, "", 0.0) for _ in range(total)), 0)
        for step in range(1, total + 1):
            tokens = tuple(
                TextToken(NEW, 1, "x", 1.0, committed_at=i + 1) if i < step else TextToken(BLANK, None, "", 0.0)
                for i in range(total)
            )
            yield TextFrame(step, total, tokens, step, committed=(step - 1,))

    frames = list(race_frames([LaneSpec("a", lane(2)), LaneSpec("b", lane(5))]))
    assert [f.total for f in frames] == [5] * 6
    assert [f.lanes[0].frame.step for f in frames] == [0, 1, 2, 2, 2, 2]  # a finished lane keeps its last frame
    assert [f.lanes[1].frame.step for f in frames] == [0, 1, 2, 3, 4, 5]


def test_the_decision_log_reads_commits_remasks_and_changes() -> None:
    from models.frames import BLANK, COMMITTED, FIXED, NEW, REMASKED, TextFrame, TextToken

    def tok(state: str, text: str = "") -> TextToken:
        return TextToken(state, None if state in (BLANK, REMASKED) else 1, text, 1.0)

    fixed = tok(FIXED, "Hi")
    frames = [
        TextFrame(0, 3, (fixed, tok(BLANK), tok(BLANK)), 0),
        TextFrame(1, 3, (fixed, tok(BLANK), tok(NEW, " a")), 1, committed=(2,)),
        TextFrame(2, 3, (fixed, tok(NEW, " b"), tok(REMASKED)), 2, committed=(1,), remasked=(2,)),
        TextFrame(3, 3, (fixed, tok(COMMITTED, " b"), tok(NEW, " c")), 3, committed=(2,)),
    ]
    log = DecisionLog()
    for frame in frames:
        log.record(frame)
    assert log.width == 2 and log.total == 3
    assert [(e.column, e.step, e.kind, e.text) for e in log.events] == [
        (1, 1, COMMIT, " a"),
        (0, 2, COMMIT, " b"),
        (1, 2, REMASK, " a"),
        (1, 3, COMMIT, " c"),
    ]
    [change] = log.changes()
    assert (change.column, change.before, change.after, change.committed_at, change.remasked_at, change.redecided_at) == (
        1,
        " a",
        " c",
        1,
        2,
        3,
    )
    # commits: col 1 while col 0 blank (not leftmost), col 0 (leftmost), col 1 after its remask (leftmost)
    assert log.in_order_share() == pytest.approx(2 / 3)
