"""The text samplers' cheap steps give exactly the frames of the straightforward ones, and the network's fused
rotary gives the logits of the plain formula.

The reference samplers below are the samplers as they were before the steps were vectorised: per blank, a
softmax row, a `topk` and an `argmax`, `TokenAlternative`s built one by one, and every frame rebuilt position by
position. They share with the real samplers only the decisions this change did not touch (the canvas, the
block plan, the remask counts and choices, the draw and the commit order), so every frame field the
bookkeeping produces (states, token ids, texts, guesses, alternatives, confidences, committed_at,
remask_count, committed and remasked positions) is checked against an independent computation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models.frames import BLANK, COMMITTED, FIXED, NEW, REMASKED, TextFrame, TextToken, TokenAlternative
from models.text.decoding import REMASK_SCHEDULES, STRATEGIES, TextRequest
from models.text.model import TextModel, load_text_model, untrained_text_model
from models.text.network import Block, TextTransformer, apply_rotary
from models.text.sample import (
    TOP_K,
    _Alternatives,
    _choose_remask,
    _draw,
    _plan,
    _remask_count,
    _scores,
    _Slot,
    build_canvas,
    sample_autoregressive,
    sample_diffusion,
)

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"


# ---------------------------------------------------------------------------------------------------------
# The reference: per-position bookkeeping, as the samplers did it before


def reference_frame(
    model: TextModel,
    slots: list[_Slot],
    step: int,
    total: int,
    passes: int,
    guesses: dict[int, tuple[int, tuple[TokenAlternative, ...]]],
    new: set[int],
    remasked: set[int],
    kind: str,
) -> TextFrame:
    tokens = []
    for position, slot in enumerate(slots):
        guess_id, alternatives = guesses.get(position, (None, ()))
        if slot.fixed:
            state = FIXED
        elif position in remasked:
            state = REMASKED
        elif slot.token_id is None:
            state = BLANK
        else:
            state = NEW if position in new else COMMITTED
        blank = slot.token_id is None
        tokens.append(
            TextToken(
                state=state,
                token_id=slot.token_id,
                text="" if slot.token_id is None else model.pieces[slot.token_id],
                confidence=slot.confidence if not blank else 0.0,
                guess=model.pieces[guess_id] if blank and guess_id is not None else "",
                alternatives=alternatives if blank else slot.alternatives,
                committed_at=slot.committed_at,
                remask_count=slot.remask_count,
                was=slot.was if blank else "",
            )
        )
    return TextFrame(
        step=step,
        total=total,
        tokens=tuple(tokens),
        forward_passes=passes,
        committed=tuple(sorted(new)),
        remasked=tuple(sorted(remasked)),
        model=kind,
    )


def reference_alternatives(model: TextModel, probs: torch.Tensor) -> tuple[TokenAlternative, ...]:
    values, ids = probs.topk(TOP_K)
    return tuple(TokenAlternative(model.pieces[i], round(v, 4)) for v, i in zip(values.tolist(), ids.tolist()))


def reference_tempered(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(logits / max(temperature, 1e-4), dim=-1)


def reference_guesses(
    model: TextModel, slots: list[_Slot], logits: dict[int, torch.Tensor], temperature: float
) -> dict[int, tuple[int, tuple[TokenAlternative, ...]]]:
    blanks = [p for p, s in enumerate(slots) if s.token_id is None]
    if not blanks:
        return {}
    probs = reference_tempered(torch.stack([logits[p] for p in blanks]), temperature)
    return {p: (int(probs[i].argmax()), reference_alternatives(model, probs[i])) for i, p in enumerate(blanks)}


def reference_row_logits(model: TextModel, features: torch.Tensor, positions: list[int]) -> dict[int, torch.Tensor]:
    if not positions:
        return {}
    with torch.inference_mode():
        rows = model.network.head(features[positions])
        rows[:, model.mask_id] = -math.inf
    return dict(zip(positions, rows))


def reference_diffusion(model: TextModel, request: TextRequest, remask_rate: float) -> Iterator[TextFrame]:
    slots = build_canvas(model, request)
    generator = torch.Generator().manual_seed(request.seed)
    generate = [i for i, s in enumerate(slots) if not s.fixed]
    plan = _plan(request, generate)
    total = sum(steps for _, steps in plan)
    passes, step = 0, 0
    yield reference_frame(model, slots, 0, total, passes, {}, set(), set(), "diffusion")
    for block, block_steps in plan:
        for step_in_block in range(block_steps):
            ids = torch.tensor([[s.token_id if s.token_id is not None else model.mask_id for s in slots]])
            with torch.inference_mode():
                features = model.network.features(ids)[0]
            # the head's rows as the sampler groups them (the blanks at the step's start, then the tokens sent
            # back): a matmul over other rows may differ in the last bit, which a 4-place rounding can show
            logits = reference_row_logits(model, features, [p for p, s in enumerate(slots) if s.token_id is None])
            passes += 1
            step += 1
            blanks = [p for p in block if slots[p].token_id is None]
            committed_here = [p for p in block if slots[p].committed_at is not None]
            remask_n, looping = _remask_count(request, remask_rate, len(committed_here), step_in_block, block_steps, len(blanks))
            steps_left = block_steps - step_in_block
            new: set[int] = set()
            if blanks:
                probs = reference_tempered(torch.stack([logits[p] for p in blanks]), request.temperature)
                drawn = _draw(probs, request.temperature, generator)
                scores = _scores(request.strategy, probs, drawn, generator)
                if steps_left == 1:
                    quota = len(blanks)
                else:
                    quota = min(len(blanks), remask_n if looping else math.ceil(len(blanks) / steps_left))
                for index in scores.topk(quota).indices.tolist():
                    position = blanks[index]
                    token = int(drawn[index])
                    slot = slots[position]
                    slot.token_id = token
                    slot.confidence = round(float(probs[index, token]), 4)
                    slot.committed_at = step
                    slot.alternatives = reference_alternatives(model, probs[index])
                    slot.was = ""
                    new.add(position)
            remasked: set[int] = set()
            candidates = [p for p in committed_here if p not in new]
            if remask_n and candidates:
                remasked = _choose_remask(request, slots, candidates, min(remask_n, len(candidates)), generator)
                for position in remasked:
                    slot = slots[position]
                    assert slot.token_id is not None  # only a decided position is remasked
                    slot.was = model.pieces[slot.token_id]
                    slot.token_id, slot.committed_at, slot.confidence = None, None, 0.0
                    slot.remask_count += 1
                logits |= reference_row_logits(model, features, sorted(remasked))
            guesses = reference_guesses(model, slots, logits, request.temperature)
            yield reference_frame(model, slots, step, total, passes, guesses, new, remasked, "diffusion")


def reference_autoregressive(model: TextModel, request: TextRequest, use_cache: bool) -> Iterator[TextFrame]:
    slots = build_canvas(model, request)
    generator = torch.Generator().manual_seed(request.seed)
    start = next(i for i, s in enumerate(slots) if not s.fixed)
    cache = model.network.new_cache() if use_cache else None
    total = len(slots) - start
    yield reference_frame(model, slots, 0, total, 0, {}, set(), set(), "ar")
    for step, position in enumerate(range(start, len(slots)), start=1):
        first = cache.length if cache is not None else 0
        ids = torch.tensor([[s.token_id for s in slots[first:position]]])
        with torch.inference_mode():
            logits = model.network(ids, cache)[0, -1]
            logits[model.mask_id] = -math.inf
        probs = reference_tempered(logits[None], request.temperature)
        token = int(_draw(probs, request.temperature, generator)[0])
        slot = slots[position]
        slot.token_id, slot.confidence, slot.committed_at = token, round(float(probs[0, token]), 4), step
        slot.alternatives = reference_alternatives(model, probs[0])
        yield reference_frame(model, slots, step, total, step, {}, {position}, set(), "ar")


def assert_same_frames(new: list[TextFrame], reference: list[TextFrame]) -> None:
    assert len(new) == len(reference)
    for frame, expected in zip(new, reference):
        if frame != expected:  # name the first differing token, not a wall of dataclass reprs
            differing = [(i, a, b) for i, (a, b) in enumerate(zip(frame.tokens, expected.tokens)) if a != b]
            raise AssertionError(f"step {frame.step}: {differing[:1] or (frame.committed, frame.remasked)} (new, reference)")


# ---------------------------------------------------------------------------------------------------------
# The requests: each strategy (two temperatures, blocks), each remask schedule (one block and several),
# infill (with and without remasking), and the default request


def diffusion_requests(length: int, steps: int) -> list[tuple[TextRequest, float]]:
    requests = [
        (TextRequest(length=length, steps=steps, strategy=strategy, temperature=temperature, block_length=block, seed=3), 0.1)
        for strategy in STRATEGIES
        for temperature, block in ((1.0, 8), (0.0, 0), (0.7, 5))
    ]
    requests += [
        (TextRequest(length=length, steps=steps, remask=schedule, block_length=block, seed=5), rate)
        for schedule in REMASK_SCHEDULES
        if schedule != "none"
        for block, rate in ((0, 0.25), (8, 0.3))
    ]
    requests += [
        (TextRequest(prompt="The cat ___ on the ___ mat.", length=6, steps=6, seed=1), 0.1),
        (TextRequest(prompt="___ and then ___", length=5, steps=4, remask="conf", seed=2), 0.3),
    ]
    return requests


def name(value: object) -> str:
    """A readable test id for a request and the remask rate beside it."""
    if not isinstance(value, TextRequest):
        return f"rate{value}"
    parts = [value.strategy, f"t{value.temperature}", f"block{value.block_length}", value.remask]
    return "-".join(parts + (["infill"] if "___" in value.prompt else []))


@pytest.fixture(scope="module")
def checkpoint() -> TextModel:
    return load_text_model(CHECKPOINTS / "text-diffusion")


@pytest.fixture(scope="module")
def twin() -> TextModel:
    return load_text_model(CHECKPOINTS / "text-ar")


@pytest.mark.real_model
@pytest.mark.parametrize(("request_", "rate"), diffusion_requests(length=20, steps=10), ids=name)
def test_diffusion_frames_equal_the_reference_on_the_checkpoint(checkpoint, request_, rate):
    assert_same_frames(
        list(sample_diffusion(checkpoint, request_, remask_rate=rate)), list(reference_diffusion(checkpoint, request_, rate))
    )


@pytest.mark.parametrize(("request_", "rate"), diffusion_requests(length=17, steps=6), ids=name)
def test_diffusion_frames_equal_the_reference_on_an_untrained_model(request_, rate):
    tiny = untrained_text_model(causal=False)
    assert_same_frames(list(sample_diffusion(tiny, request_, remask_rate=rate)), list(reference_diffusion(tiny, request_, rate)))


@pytest.mark.real_model
def test_the_default_request_equals_the_reference(checkpoint):
    request = TextRequest()
    assert_same_frames(list(sample_diffusion(checkpoint, request)), list(reference_diffusion(checkpoint, request, 0.1)))


@pytest.mark.real_model
@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize(
    "request_",
    [
        TextRequest(length=24),
        TextRequest(length=12, temperature=0.0, seed=2),
        TextRequest(prompt="A", length=10, temperature=1.5, seed=9),
    ],
)
def test_autoregressive_frames_equal_the_reference(twin, request_, use_cache):
    assert_same_frames(
        list(sample_autoregressive(twin, request_, use_cache=use_cache)),
        list(reference_autoregressive(twin, request_, use_cache)),
    )


def test_rows_give_each_rows_argmax_and_alternatives_even_with_ties():
    """Ties at the top (where topk's order is its own) and rows of zeros (temperature 0) do not occur in the runs
    above; the guesses still are argmax's and the alternatives the per-row ones."""
    tiny = untrained_text_model(causal=False)
    vocab = len(tiny.pieces)
    probs = torch.softmax(torch.randn(6, vocab, generator=torch.Generator().manual_seed(0)), dim=-1)
    probs[0, [7, 3, 11]] = 0.3  # a three-way tie at the top
    probs[1] = 0.0
    probs[1, 5] = 1.0  # one-hot: the other four alternatives are ties at zero
    probs[2] = 1 / vocab  # all equal
    probs[3, [2, 9]] = torch.tensor([0.12345, 0.00005])  # near the 4th decimal
    alternatives = _Alternatives(tiny.pieces)
    guesses, rows = alternatives.rows(probs, list(range(6)))
    assert guesses == probs.argmax(-1).tolist()
    assert rows == [reference_alternatives(tiny, row) for row in probs]
    again = alternatives.rows(probs.clone(), list(range(6)))[1]
    assert all(a is b for a, b in zip(again, rows))  # unchanged rows: the same tuples


@pytest.mark.real_model
def test_unchanged_tokens_and_alternatives_are_the_same_objects(checkpoint):
    """What lets a step skip rebuilding them: a position that did not change keeps its `TextToken`."""
    frames = list(sample_diffusion(checkpoint, TextRequest(length=16, steps=8, block_length=0, seed=4)))
    for before, after in itertools.pairwise(frames[1:]):
        for position, (old, new) in enumerate(zip(before.tokens, after.tokens)):
            if old.state in (FIXED, COMMITTED):
                assert new is old, f"step {after.step}, position {position}"
            if old.state == NEW:  # committed in the step before: the state changes, the alternatives do not
                assert new.state == COMMITTED and new.alternatives is old.alternatives


# ---------------------------------------------------------------------------------------------------------
# The network: the rotary as one complex product gives the plain formula's numbers


def plain_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def plain_forward(network: TextTransformer, ids: torch.Tensor) -> torch.Tensor:
    """The forward pass before the rotary was fused: queries and keys rotated apart, (B, H, T, D) first (and the
    shift of a shift-initialised diffusion model, as its config documents it)."""
    B, T = ids.shape
    cos, sin = network.rope_cos[:T], network.rope_sin[:T]
    x = network.embed(ids)
    for block in network.blocks:
        assert isinstance(block, Block)
        attention = block.attention
        C = x.shape[-1]
        q, k, v = attention.qkv(block.norm1(x)).view(B, T, 3, attention.heads, C // attention.heads).permute(2, 0, 3, 1, 4)
        q, k = plain_rotary(q, cos, sin), plain_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=attention.causal)
        x = x + attention.out(y.transpose(1, 2).reshape(B, T, C))
        x = x + block.mlp(block.norm2(x))
    x = network.norm(x)
    if network.config.shift:  # Dream's shift, as documented: position j's logits from the state at j - 1
        x = torch.cat([x[:, :1], x[:, :-1]], dim=1)
    return network.head(x)


def test_the_fused_rotary_gives_the_plain_formula():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 9, 3, 4, 16, generator=generator)  # (B, T, q/k/v, H, D) as attention lays them out
    angles = torch.rand(9, 8, generator=generator) * 6
    cos, sin = angles.cos(), angles.sin()
    fused = apply_rotary(x[:, :, :2], cos[:, None, None], sin[:, None, None])
    plain = plain_rotary(x[:, :, :2].transpose(1, 3), cos, sin).transpose(1, 3)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-6)


@pytest.mark.real_model
def test_the_heads_rows_equal_the_full_forwards_rows(checkpoint):
    """The diffusion sampler applies the head to the blanks' rows only: the same logits as the whole canvas's."""
    ids = torch.randint(2, checkpoint.network.config.vocab_size, (1, 68), generator=torch.Generator().manual_seed(3))
    rows = [0, 5, 6, 40, 67]
    with torch.inference_mode():
        full = checkpoint.network(ids)[0, rows]
        some = checkpoint.network.head(checkpoint.network.features(ids)[0, rows])
    torch.testing.assert_close(some, full, rtol=0, atol=1e-4)


@pytest.mark.real_model
@pytest.mark.parametrize("name", ["text-diffusion", "text-ar"])
def test_logits_equal_the_plain_forward_on_the_checkpoint(name):
    model = load_text_model(CHECKPOINTS / name)
    ids = torch.randint(0, model.network.config.vocab_size, (2, 68), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(model.network(ids), plain_forward(model.network, ids), rtol=0, atol=1e-5)
