"""The text demos' decoding vocabulary, in one torch-free place: the strategies and remask schedules a request
may name, the default decoding, the infill mark, the request types themselves, and how many tokens a request's
canvas takes (prompt + blanks).

The samplers (`models.text.sample`), the race (`models.text.race`) and the web layer (`app.protocol` re-exports
the requests; `app.backends` and `app.fakes` check canvases against a context) all read it from here, so the
web layer can validate a request and count its canvas without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

# The order is the one validation messages list them in ("strategy should be 'confidence', 'random', ...").
Strategy = Literal["confidence", "random", "margin", "entropy"]
RemaskSchedule = Literal["none", "cap", "conf", "loop"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
REMASK_SCHEDULES: tuple[RemaskSchedule, ...] = get_args(RemaskSchedule)

INFILL_MARK = "___"  # each one in a prompt is a gap of `length` blanks, filled reading both sides
SEED_MAX = 2**32 - 1


class SamplingError(ValueError):
    """A request the model cannot serve (too long for the context, infill for the left-to-right twin, ...).

    Bounds a request type states are pydantic's to enforce; this is for what only the model knows."""


@dataclass(frozen=True)
class Decoding:
    """How the diffusion sampler picks tokens: the knobs that trade fluency against variety."""

    strategy: Strategy
    temperature: float
    block_length: int  # 0: the whole canvas at once


# Chosen with `python -m models.text.evaluate --sweep` (gen-ppl and distinct-2 of each decoding; see the
# text-diffusion model card): the default everywhere a request does not say otherwise.
DEFAULT_DECODING = Decoding(strategy="confidence", temperature=1.0, block_length=16)


# No docstrings on the request classes but the race's: pydantic would put them in the published JSON schema.
class StrictRequest(BaseModel):
    # Frozen: a request is a value (its canonical JSON keys the replay cache); no unknown fields, finite numbers.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TextRequest(StrictRequest):
    prompt: str = "Once upon a time"
    length: int = Field(64, ge=1, description="tokens to generate")  # per gap, with infill
    steps: int = Field(64, ge=1, description="one token per step at the default length")
    strategy: Strategy = DEFAULT_DECODING.strategy
    temperature: float = Field(DEFAULT_DECODING.temperature, ge=0.0, le=2.0)
    block_length: int = Field(
        DEFAULT_DECODING.block_length, ge=0, description="semi-autoregressive block size; 0 or >= length: one block"
    )
    remask: RemaskSchedule = "none"
    seed: int = Field(0, ge=0, le=SEED_MAX)


class RaceRequest(TextRequest):
    """The race: the diffusion lane runs these settings; the autoregressive lane the same prompt (the text before
    the gap, with one `___`), length, temperature and seed, one token per forward pass."""

    steps: int = Field(16, ge=1, description="diffusion steps; the autoregressive lane always takes `length`")


# ---------------------------------------------------------------------------------------------------------
# The canvas: fixed text and gaps of blanks. The sampler builds it (`models.text.sample.build_canvas`) and the
# web layer counts it before a job starts, both from `canvas_texts`, so the two cannot disagree.


def canvas_texts(prompt: str) -> list[str]:
    """The canvas's fixed text, piece by piece, with a gap of `length` blanks between each two pieces: the
    prompt split at its `___` marks (infill), or, without a mark, the prompt with one gap after it."""
    return prompt.split(INFILL_MARK) if INFILL_MARK in prompt else [prompt, ""]


def tokens_needed(request: TextRequest, count_tokens: Callable[[str], int]) -> int:
    """Canvas size: each piece of fixed text tokenised alone, plus `length` blanks per gap."""
    texts = canvas_texts(request.prompt)
    return sum(count_tokens(text) for text in texts if text) + request.length * (len(texts) - 1)


def context_problem(request: TextRequest, context: int, count_tokens: Callable[[str], int]) -> str | None:
    """A readable reason when prompt + blanks do not fit a model that reads `context` tokens, else None."""
    needed = tokens_needed(request, count_tokens)
    if needed <= context:
        return None
    gaps = len(canvas_texts(request.prompt)) - 1  # places that each take `length` blanks
    room = context - (needed - request.length * gaps)  # what the fixed text leaves for blanks
    hint = f"use length {room // gaps} or less" if room >= gaps else "shorten the prompt"
    return f"prompt and blanks need {needed} tokens but the model reads at most {context}: {hint}"
