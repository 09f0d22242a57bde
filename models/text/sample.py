"""Text samplers: plain generators that yield one `TextFrame` per step.

Masked diffusion (`sample_diffusion`) starts from a canvas of blanks after the prompt (or around the
fixed text of an infill template) and, at every step, runs the model once over the whole canvas and
commits some blanks. Which blanks is the *strategy*:
    random      MDLM ancestral sampling: a uniformly random subset (order carries no information)
    confidence  LLaDA: the blanks whose sampled token has the highest probability
    margin      the largest gap between the top two probabilities
    entropy     the lowest entropy of the predictive distribution
`block_length` > 0 fills the canvas in left-to-right blocks (semi-autoregressive, LLaDA).
ReMDM remasking (`remask`) sends some committed tokens back to blank so the model can change its mind:
    cap   a capped share of committed tokens, chosen at random
    conf  the same count, chosen among the least confident
    loop  fill for the first 60% of a block's steps; until 85% each step remasks the least confident tokens
          and redecides as many (no net progress); then finish.
The autoregressive twin (`sample_autoregressive`) commits one token per step, left to right, reading each
token once through a KV cache.
Every sampler takes its randomness from a `torch.Generator` seeded by `request.seed`.
The request type, the names above, the default decoding and the canvas rule live in `models.text.decoding`
(torch-free, shared with the web layer).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from models.frames import BLANK, COMMITTED, FIXED, NEW, REMASKED, TextFrame, TextToken, TokenAlternative
from models.requests import SamplingError
from models.text.decoding import DEFAULT_DECODING as DEFAULT_DECODING  # re-exported: the model card reads it here
from models.text.decoding import INFILL_MARK, TextRequest, canvas_texts, context_problem
from models.text.model import TextModel

TOP_K = 5
REMASK_RATE = 0.1  # share of committed tokens a remasking step may send back (a sampler knob, not a request field)


@dataclass
class _Slot:
    """Mutable per-position bookkeeping while sampling; frozen into TextToken for each frame."""

    token_id: int | None
    fixed: bool
    confidence: float = 1.0
    committed_at: int | None = None
    remask_count: int = 0
    alternatives: tuple[TokenAlternative, ...] = ()
    was: str = ""  # the text it had before it was last sent back, until it is decided again


def count_tokens(model: TextModel, text: str) -> int:
    return len(model.tokenizer.encode(text).ids)


def build_canvas(model: TextModel, request: TextRequest) -> list[_Slot]:
    """The fixed text of `canvas_texts` (the prompt, or the pieces between `___` marks, each tokenised alone)
    with each gap's blanks between them (`request.gap_sizes`: `n` for `___{n}`, `length` for a bare `___`): the
    canvas `models.text.decoding.tokens_needed` counts."""
    problem = context_problem(request, model.context, lambda text: count_tokens(model, text))
    if problem:
        raise SamplingError(problem)
    sizes = request.gap_sizes
    slots: list[_Slot] = []
    for index, text in enumerate(canvas_texts(request.prompt)):
        if index:
            slots += [_Slot(None, fixed=False) for _ in range(sizes[index - 1])]
        if text:
            slots += [_Slot(i, fixed=True) for i in model.tokenizer.encode(text).ids]
    return slots


class _Alternatives:
    """Top-k alternatives as `TokenAlternative` tuples, for many rows at once: one `topk`, its values and ids read
    with one `tolist` each.

    A position whose top-k did not change since it was last asked for (same tokens, same rounded probabilities)
    gets the same tuple object back, so its token can stay the same object too; a commit takes the tuple its blank
    showed in that step."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.last: dict[int, tuple[list[int], list[float], tuple[TokenAlternative, ...]]] = {}

    def rows(self, probs: torch.Tensor, positions: list[int]) -> tuple[list[int], list[tuple[TokenAlternative, ...]]]:
        """probs (N, V), one row per position -> per row, the top guess (the first highest probability, as `argmax`
        picks it) and the top-k alternatives, their probabilities rounded to 4 places."""
        values, ids = probs.topk(TOP_K)
        value_rows, id_rows = values.tolist(), ids.tolist()
        guesses = [top_ids[0] for top_ids in id_rows]
        # topk orders equal values its own way and argmax takes the first: a tied maximum (rare) asks argmax
        tied = [row for row, top_values in enumerate(value_rows) if top_values[0] == top_values[1]]  # TOP_K >= 2
        if tied:
            for row, guess in zip(tied, probs[tied].argmax(-1).tolist()):
                guesses[row] = guess
        rows: list[tuple[TokenAlternative, ...]] = []
        last, pieces = self.last, self.pieces
        places = (4,) * TOP_K
        for position, top_values, top_ids in zip(positions, value_rows, id_rows):
            rounded = list(map(round, top_values, places))
            previous = last.get(position)
            if previous is not None and previous[1] == rounded and previous[0] == top_ids:
                rows.append(previous[2])
                continue
            alternatives = tuple(map(TokenAlternative, map(pieces.__getitem__, top_ids), rounded))
            last[position] = (top_ids, rounded, alternatives)
            rows.append(alternatives)
        return guesses, rows


class _Tokens:
    """The latest frame's tokens, rebuilt only where a step changed something: `TextToken` is frozen, so an
    unchanged position (every fixed and every settled committed token, a blank whose guess and alternatives did
    not change) keeps its object from frame to frame."""

    def __init__(self, model: TextModel, slots: list[_Slot], kind: str) -> None:
        self.pieces, self.slots, self.kind = model.pieces, slots, kind
        self.tokens = [self._decided(p, FIXED) if s.fixed else TextToken(BLANK, None, "", 0.0) for p, s in enumerate(slots)]
        self.new: tuple[int, ...] = ()  # positions NEW in the latest frame: COMMITTED in the next unless remasked

    def _decided(self, position: int, state: str) -> TextToken:
        slot = self.slots[position]
        token_id = slot.token_id
        assert token_id is not None
        return TextToken(
            state, token_id, self.pieces[token_id], slot.confidence, "", slot.alternatives, slot.committed_at, slot.remask_count
        )

    def blanks(
        self, state: str, positions: list[int], guess_ids: list[int], rows: list[tuple[TokenAlternative, ...]], skip: set[int]
    ) -> None:
        """The blanks at `positions` (but those in `skip`), in `state`, with their guesses and alternatives."""
        tokens, slots, pieces = self.tokens, self.slots, self.pieces
        for position, guess_id, alternatives in zip(positions, guess_ids, rows):
            if position in skip:
                continue
            old, slot, guess = tokens[position], slots[position], pieces[guess_id]
            if (
                old.alternatives is not alternatives
                or old.guess != guess
                or old.state != state
                or old.token_id is not None
                or old.remask_count != slot.remask_count  # a token sent back: `was` changed with the count
            ):
                tokens[position] = TextToken(
                    state, None, "", 0.0, guess, alternatives, slot.committed_at, slot.remask_count, slot.was
                )

    def frame(self, step: int, total: int, passes: int, new: set[int], remasked: set[int]) -> TextFrame:
        """The frame after `new` were committed and `remasked` sent back (their blanks set with `blanks` already)."""
        for position in self.new:
            if position not in remasked:
                self.tokens[position] = self._decided(position, COMMITTED)
        self.new = tuple(sorted(new))
        for position in self.new:
            self.tokens[position] = self._decided(position, NEW)
        return TextFrame(
            step=step,
            total=total,
            tokens=tuple(self.tokens),
            forward_passes=passes,
            committed=self.new,
            remasked=tuple(sorted(remasked)),
            model=self.kind,
        )


def _row_logits(model: TextModel, features: torch.Tensor, positions: list[int]) -> torch.Tensor:
    """The logits of `positions` only, from the network's features (T, C): the head (a (C, V) matmul) runs on
    those rows instead of the whole canvas; a blank is never predicted."""
    logits = model.network.head(features.index_select(0, torch.tensor(positions)))
    logits[:, model.mask_id] = -math.inf
    return logits


def _tempered(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    if temperature == 1.0:  # dividing by 1 changes no number: skip the pass over (N, V)
        return torch.softmax(logits, dim=-1)
    return torch.softmax(logits / max(temperature, 1e-4), dim=-1)


def _draw(probs: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """One token per row of probs (N, V), drawn from that row.

    By the inverse of each row's cumulative distribution: one uniform number a row. torch.multinomial draws an
    exponential for every entry of every row, 18x the time at 64 blanks x 2048 tokens (measured), about 5% of a
    text step. Tokens of probability 0 are never drawn: the search lands on the first sum above the number."""
    if temperature == 0:
        return probs.argmax(-1)
    cumulative = probs.cumsum(-1)
    uniform = torch.rand(len(probs), 1, generator=generator) * cumulative[:, -1:]
    return torch.searchsorted(cumulative, uniform, right=True).squeeze(-1).clamp_max(probs.shape[-1] - 1)


def _picked(probs: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
    """The probability of each row's drawn token: probs (N, V), drawn (N,) -> (N,)."""
    return probs.gather(-1, drawn[:, None]).squeeze(-1)


def _scores(strategy: str, probs: torch.Tensor, drawn: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Higher score = commit sooner. probs (N, V), drawn (N,).

    Only `confidence` looks at the draw: an unlikely draw waits and is drawn again, which reads better and
    varies less than the temperature promises. The other orders commit whatever was drawn."""
    if strategy == "random":
        return torch.rand(len(drawn), generator=generator)
    if strategy == "confidence":
        return _picked(probs, drawn)
    if strategy == "margin":
        top2 = probs.topk(2, dim=-1).values
        return top2[:, 0] - top2[:, 1]
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
    return -entropy


def _plan(request: TextRequest, generate: list[int]) -> list[tuple[list[int], int]]:
    """Split positions into blocks and give each block its share of the steps: [(positions, steps)]."""
    if request.block_length <= 0 or request.block_length >= len(generate):
        return [(generate, request.steps)]
    blocks = [generate[i : i + request.block_length] for i in range(0, len(generate), request.block_length)]
    # Spread the steps so they add up to the request (each block needs at least one).
    base, extra = divmod(max(request.steps, len(blocks)), len(blocks))
    return [(block, base + (1 if index < extra else 0)) for index, block in enumerate(blocks)]


def _remask_count(
    request: TextRequest, rate: float, committed: int, step_in_block: int, block_steps: int, blanks_left: int
) -> tuple[int, bool]:
    """How many committed tokens to send back this step, and whether this is a no-progress loop step."""
    if request.remask == "none" or step_in_block >= block_steps - 1 or committed == 0:
        return 0, False
    if request.remask == "loop":
        loop_start, loop_end = int(0.6 * block_steps), int(0.85 * block_steps)
        if loop_start <= step_in_block < loop_end:
            return max(1, round(rate * committed)), True
        return 0, False
    return min(round(rate * committed), blanks_left + committed), False


def sample_diffusion(
    model: TextModel,
    request: TextRequest,
    should_stop: Callable[[], bool] | None = None,
    remask_rate: float = REMASK_RATE,
    commit_threshold: float | None = None,
) -> Iterator[TextFrame]:
    """`remask_rate`: the share of committed tokens a remasking step (`request.remask`) may send back.

    `commit_threshold` (Fast-dLLM's confidence-threshold decoding, measured by `models.text.frontier`): each step
    commits every blank of the block whose drawn token has at least this probability (at least one), and a block
    ends as soon as it is full; `request.steps` is then only the most passes a block may take, and the frames'
    `total` an upper bound.

    A step is one pass of the network's trunk over the canvas, its head over the blanks' rows only, and, over every
    blank at once, one softmax and one top-k (the blanks' guesses and alternatives, and the alternatives of the
    tokens committed from them); only the tokens that changed are rebuilt."""
    if model.causal:
        raise SamplingError("sample_diffusion needs the bidirectional (diffusion) model")
    if not 0.0 <= remask_rate <= 1.0:  # also refuses NaN
        raise SamplingError("remask_rate must be between 0 and 1")
    if commit_threshold is not None and not 0.0 < commit_threshold <= 1.0:
        raise SamplingError("commit_threshold must be above 0 and at most 1")
    if commit_threshold is not None and request.remask != "none":
        raise SamplingError("confidence-threshold decoding does not remask")
    slots = build_canvas(model, request)
    generator = torch.Generator().manual_seed(request.seed)
    generate = [i for i, s in enumerate(slots) if not s.fixed]
    plan = _plan(request, generate)
    total = sum(steps for _, steps in plan)
    passes, step = 0, 0
    canvas = [s.token_id if s.token_id is not None else model.mask_id for s in slots]
    tokens = _Tokens(model, slots, "diffusion")
    alternatives = _Alternatives(model.pieces)
    yield tokens.frame(0, total, passes, set(), set())
    for block, block_steps in plan:
        for step_in_block in range(block_steps):
            if should_stop and should_stop():
                return
            if commit_threshold is not None and all(slots[p].token_id is not None for p in block):
                break  # threshold decoding: the block filled early
            with torch.inference_mode():
                # (T, C); logits only for the blanks (and for tokens sent back below): the head's rows for
                # fixed and committed tokens would never be read
                features = model.network.features(torch.tensor([canvas]))[0]
                passes += 1
                step += 1
                # every blank of the canvas, in order: the block's blanks are a run of them (blocks are runs of
                # `generate`), so their rows are a slice of the same probabilities
                everywhere = [p for p in generate if slots[p].token_id is None]
                blanks = [p for p in block if slots[p].token_id is None]
                first = bisect.bisect_left(everywhere, block[0]) if blanks else 0
                committed_here = [p for p in block if slots[p].committed_at is not None]
                remask_n, looping = _remask_count(
                    request, remask_rate, len(committed_here), step_in_block, block_steps, len(blanks)
                )
                steps_left = block_steps - step_in_block
                new: set[int] = set()
                guess_ids: list[int] = []
                shown: list[tuple[TokenAlternative, ...]] = []
                if everywhere:
                    every_probs = _tempered(_row_logits(model, features, everywhere), request.temperature)  # (N, V)
                    guess_ids, shown = alternatives.rows(every_probs, everywhere)
                if blanks:
                    probs = every_probs[first : first + len(blanks)]  # the block's blanks
                    drawn = _draw(probs, request.temperature, generator)
                    scores = _scores(request.strategy, probs, drawn, generator)
                    if steps_left == 1:  # the block's last step fills every blank left
                        quota = len(blanks)
                    elif commit_threshold is not None:  # every draw at least this likely, and at least one
                        quota = max(1, int((_picked(probs, drawn) >= commit_threshold).sum()))
                    else:  # a loop step redecides as many as it remasks; otherwise keep on schedule
                        quota = min(len(blanks), remask_n if looping else math.ceil(len(blanks) / steps_left))
                    chosen = scores.topk(quota).indices.tolist()
                    drawn_ids = drawn.tolist()
                    # the probability of each draw (what the confidence order scores)
                    confidences = (scores if request.strategy == "confidence" else _picked(probs, drawn)).tolist()
                    for index in chosen:
                        position = blanks[index]
                        token = drawn_ids[index]
                        slot = slots[position]
                        slot.token_id = token
                        slot.confidence = round(confidences[index], 4)
                        slot.committed_at = step
                        slot.alternatives = shown[first + index]
                        slot.was = ""
                        canvas[position] = token
                        new.add(position)
                remasked: set[int] = set()
                candidates = [p for p in committed_here if p not in new]
                if remask_n and candidates:
                    remasked = _choose_remask(request, slots, candidates, min(remask_n, len(candidates)), generator)
                    for position in remasked:
                        slot = slots[position]
                        assert slot.token_id is not None
                        slot.was = model.pieces[slot.token_id]
                        slot.token_id, slot.committed_at, slot.confidence = None, None, 0.0
                        slot.remask_count += 1
                        canvas[position] = model.mask_id
                # the blanks' guesses (the faint 'ghost' tokens): from the rows above, and for the tokens just
                # sent back, from their rows of the same features
                tokens.blanks(BLANK, everywhere, guess_ids, shown, skip=new)
                if remasked:
                    sent_back = sorted(remasked)
                    back_probs = _tempered(_row_logits(model, features, sent_back), request.temperature)
                    tokens.blanks(REMASKED, sent_back, *alternatives.rows(back_probs, sent_back), skip=set())
            yield tokens.frame(step, total, passes, new, remasked)


def _choose_remask(
    request: TextRequest, slots: list[_Slot], candidates: list[int], count: int, generator: torch.Generator
) -> set[int]:
    if request.remask == "cap":
        order = torch.randperm(len(candidates), generator=generator)[:count]
        return {candidates[i] for i in order.tolist()}
    # conf and loop: the least confident are the most likely to go back (Gumbel top-k keeps it random).
    confidence = torch.tensor([slots[p].confidence for p in candidates])
    gumbel = -torch.log(-torch.log(torch.rand(len(candidates), generator=generator).clamp(1e-9, 1 - 1e-9)))
    keys = -confidence / 0.1 + gumbel
    return {candidates[i] for i in keys.topk(count).indices.tolist()}


def sample_autoregressive(
    model: TextModel, request: TextRequest, should_stop: Callable[[], bool] | None = None, use_cache: bool = True
) -> Iterator[TextFrame]:
    """Left to right, one token per step. With `use_cache` (the default) a KV cache lets each step read only
    the newest token (the prompt once, at the first step); without it every step reads the whole prefix.
    Both give the same logits (within float error) and so, seeded, the same text."""
    if not model.causal:
        raise SamplingError("sample_autoregressive needs the causal model")
    if INFILL_MARK in request.prompt:
        raise SamplingError("a left-to-right model cannot fill blanks that have text after them")
    slots = build_canvas(model, request)
    generator = torch.Generator().manual_seed(request.seed)
    start = next(i for i, s in enumerate(slots) if not s.fixed)
    if start == 0:  # nothing to condition on: the twin was trained on text that always has a left context
        raise SamplingError("the left-to-right model needs a prompt of at least one token")
    cache = model.network.new_cache() if use_cache else None
    total = len(slots) - start
    tokens = _Tokens(model, slots, "ar")
    alternatives = _Alternatives(model.pieces)
    yield tokens.frame(0, total, 0, set(), set())
    for step, position in enumerate(range(start, len(slots)), start=1):
        if should_stop and should_stop():
            return
        first = cache.length if cache is not None else 0  # cached: only the positions not read yet
        ids = torch.tensor([[s.token_id for s in slots[first:position]]])
        with torch.inference_mode():
            logits = model.network(ids, cache)[0, -1]  # (V,) next-token logits
            logits[model.mask_id] = -math.inf
            probs = _tempered(logits[None], request.temperature)
            token = int(_draw(probs, request.temperature, generator)[0])
            slot = slots[position]
            slot.token_id, slot.confidence, slot.committed_at = token, round(float(probs[0, token]), 4), step
            slot.alternatives = alternatives.rows(probs, [position])[1][0]
        yield tokens.frame(step, total, step, {position}, set())


def final_text(model: TextModel, frame: TextFrame) -> str:
    """Properly decoded text of a finished frame (pieces may split multi-byte characters)."""
    ids = [t.token_id for t in frame.tokens if t.token_id is not None]
    return model.tokenizer.decode(ids, skip_special_tokens=False)
