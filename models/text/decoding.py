"""The text demos' decoding vocabulary, in one torch-free place: the strategies and remask schedules a request
may name, the default decoding, the infill mark, the request types themselves, and how many tokens a request's
canvas takes (prompt + blanks).

The samplers (`models.text.sample`), the race (`models.text.race`) and the web layer (`app.demos.protocol` re-exports
the requests; `app.backends.real` and `app.backends.fakes` check canvases against a context) all read it from here, so the
web layer can validate a request and count its canvas without importing torch.

Infill: each `___` in a prompt is a gap of blanks the model fills reading both sides; `___{8}` is a gap of 8
blanks, a bare `___` one of `length`. `parse_gaps` is the one reader of that syntax.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from models.requests import SEED_MAX, SamplingError, StrictRequest
from models.text.frontier import race_default_steps

# The order is the one validation messages list them in ("strategy should be 'confidence', 'random', ...").
Strategy = Literal["confidence", "random", "margin", "entropy"]
RemaskSchedule = Literal["none", "cap", "conf", "loop"]
# A rework (`models.text.rework`): what to write again around a changed word.
Redo = Literal["window", "after", "all"]
REDO_REGIONS: tuple[Redo, ...] = ("window", "after", "all")
EDIT_WORD_CHARS_MAX = 40  # the new word (or short phrase): the hard cap; the web layer's limit may be lower
EDIT_WINDOW_MAX = 64  # words each side of the new word (redo=window): the hard cap
EDIT_FIELDS = ("edit_at", "edit_word", "redo", "window")
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
REMASK_SCHEDULES: tuple[RemaskSchedule, ...] = get_args(RemaskSchedule)

INFILL_MARK = "___"  # each one in a prompt is a gap of blanks, filled reading both sides: `length` of them,
GAP_SIZE_OPEN, GAP_SIZE_CLOSE = "{", "}"  # or, written right after the mark as `___{8}`, that many


class GapSizeError(SamplingError):
    """A gap whose written size is not a size (`___{0}`, `___{x}`, `___{8` without its `}`). The request types
    refuse such a prompt (a validation error); this reaches a caller that parses an unvalidated prompt."""

    def __init__(self, gap: int, written: str, reason: str) -> None:
        self.gap, self.written, self.reason = gap, written, reason  # gap: 1-based, in reading order; written: `___{x}`
        super().__init__(f"gap {gap} is written {written}: {reason}")


@dataclass(frozen=True)
class Decoding:
    """How the diffusion sampler picks tokens: the knobs that trade fluency against variety."""

    strategy: Strategy
    temperature: float
    block_length: int  # 0: the whole canvas at once


# Chosen with `python -m models.text.evaluate --sweep --seeds 16` (gen-ppl and distinct-2 of each decoding over
# 128 samples; see the text-diffusion model card): the default everywhere a request does not say otherwise.
# Lowest entropy first, in 16-token blocks, commits whatever it drew: within 2x the twin's gen-ppl at 0.95 of its
# distinct-2 (docs/text-recipes.md), where most-confident-first (the default before) read fluently but repeated
# itself (distinct-2 about 0.4 of the twin's).
TEMPERATURE_MAX = 2.0  # sampling temperature: past it the text is noise
DEFAULT_DECODING = Decoding(strategy="entropy", temperature=1.0, block_length=16)


# The race's default diffusion steps: chosen from the committed frontier (`models.text.frontier`), never to
# flatter: the fewest steps whose judge perplexity is within 1.5x of the twin's, else the best-reading steps.
RACE_DEFAULT_STEPS = race_default_steps()


# No docstrings on the request classes but the race's: pydantic would put them in the published JSON schema.
class TextRequest(StrictRequest):
    prompt: str = "Once upon a time"
    length: int = Field(64, ge=1, description="tokens to generate")  # per gap, with infill
    steps: int = Field(64, ge=1, description="one token per step at the default length")
    strategy: Strategy = DEFAULT_DECODING.strategy
    temperature: float = Field(DEFAULT_DECODING.temperature, ge=0.0, le=TEMPERATURE_MAX)
    block_length: int = Field(
        DEFAULT_DECODING.block_length, ge=0, description="semi-autoregressive block size; 0 or >= length: one block"
    )
    remask: RemaskSchedule = "none"
    seed: int = Field(0, ge=0, le=SEED_MAX)
    # A rework: the run above (the base) with its generated word `edit_at` changed to `edit_word`, the `redo` region
    # around it blank again and written anew (`models.text.rework`). Cross-field rules: `models.text.rework.edit_problem`.
    edit_at: int | None = Field(None, ge=0, le=4096, description="rework: the generated word to change (0: the first)")
    edit_word: str = Field("", max_length=EDIT_WORD_CHARS_MAX, description="rework: the word that replaces it")
    redo: Redo = Field("window", description="rework: the words around it, everything after it, or all but the prompt")
    window: int = Field(4, ge=1, le=EDIT_WINDOW_MAX, description="rework, redo=window: words each side to write anew")

    @field_validator("prompt")
    @classmethod
    def _gap_sizes_are_sizes(cls, prompt: str) -> str:
        try:
            parse_gaps(prompt)
        except GapSizeError as error:  # "prompt has gap 2 written ___{0}: ..." once the web layer names the field
            raise PydanticCustomError(
                "gap_size",
                "has gap {gap} written {written}: {reason}",
                {"gap": error.gap, "written": error.written, "reason": error.reason},
            ) from None
        return prompt

    @property
    def is_rework(self) -> bool:
        return self.edit_at is not None

    def base(self) -> TextRequest:
        """The run a rework starts from: this request without its edit."""
        fields = type(self).model_fields
        return self.model_copy(update={name: fields[name].default for name in EDIT_FIELDS})

    @property
    def gap_sizes(self) -> list[int]:
        """Blanks in each gap of the canvas, in reading order (`canvas_gaps`)."""
        return canvas_gaps(self.prompt, self.length)[1]


class RaceRequest(TextRequest):
    """The race: the diffusion lane runs these settings; the autoregressive lane the same prompt (the text before
    the gap, with one `___`), length (a sized gap's, `___{8}`), temperature and seed, one token per forward pass."""

    steps: int = Field(
        RACE_DEFAULT_STEPS, ge=1, description="diffusion steps; the autoregressive lane takes one pass per token it writes"
    )


# ---------------------------------------------------------------------------------------------------------
# The canvas: fixed text and gaps of blanks. The sampler builds it (`models.text.sample.build_canvas`) and the
# web layer counts it before a job starts, both from `parse_gaps`, so the two cannot disagree.

GAP_SIZE_RULE = "a gap's size is a whole number of blanks from 1 to the length limit, as in ___{8}"
_DIGITS = re.compile(r"[0-9]+")


def parse_gaps(prompt: str) -> tuple[list[str], list[int | None]]:
    """The prompt as an infill template: its fixed text, piece by piece, and between each two pieces a gap, with
    the size written after its mark (`___{8}`: 8) or None (a bare `___`: `length`). Without a mark, the prompt
    is one piece followed by one bare gap. Marks are found left to right as `str.split` finds them, so a bare
    `___` splits exactly as it always has. A mark followed by `{` must close it on a size of 1 or more blanks;
    anything else raises `GapSizeError` naming the gap (1-based, in reading order)."""
    if INFILL_MARK not in prompt:
        return [prompt, ""], [None]
    pieces: list[str] = []
    sizes: list[int | None] = []
    start = 0
    mark = prompt.find(INFILL_MARK)
    while mark >= 0:
        pieces.append(prompt[start:mark])
        start = mark + len(INFILL_MARK)
        size: int | None = None
        if prompt.startswith(GAP_SIZE_OPEN, start):
            gap = len(sizes) + 1
            close = prompt.find(GAP_SIZE_CLOSE, start)
            if close < 0:
                shown = INFILL_MARK + prompt[start : start + 8] + ("..." if len(prompt) > start + 8 else "")
                raise GapSizeError(gap, shown, f"its '{GAP_SIZE_OPEN}' has no '{GAP_SIZE_CLOSE}'; {GAP_SIZE_RULE}")
            written = prompt[start + 1 : close]
            digits = written.lstrip("0")
            if not _DIGITS.fullmatch(written) or not digits or len(digits) > 9:  # 10+ digits: no limit is that high
                shown = written if len(written) <= 12 else written[:12] + "..."
                raise GapSizeError(gap, f"{INFILL_MARK}{GAP_SIZE_OPEN}{shown}{GAP_SIZE_CLOSE}", GAP_SIZE_RULE)
            size = int(digits)
            start = close + 1
        sizes.append(size)
        mark = prompt.find(INFILL_MARK, start)
    pieces.append(prompt[start:])
    return pieces, sizes


def canvas_texts(prompt: str) -> list[str]:
    """The canvas's fixed text, piece by piece, with a gap between each two pieces: the prompt split at its `___`
    marks (infill; a gap's written size is not text), or, without a mark, the prompt with one gap after it."""
    return parse_gaps(prompt)[0]


def canvas_gaps(prompt: str, length: int) -> tuple[list[str], list[int]]:
    """`canvas_texts` and the blanks of each gap between them: its written size, or `length` for a bare `___`
    (and for the gap after a prompt without marks)."""
    pieces, sizes = parse_gaps(prompt)
    return pieces, [length if size is None else size for size in sizes]


def gap_limit_problem(prompt: str, max_length: int) -> str | None:
    """A readable reason when a gap's written size is over `max_length` (the limit `length` has), else None."""
    for gap, size in enumerate(parse_gaps(prompt)[1], start=1):
        if size is not None and size > max_length:
            return f"gap {gap} of the prompt is {size} blanks, over the limit of {max_length}: a gap's size is 1 to {max_length}"
    return None


def tokens_needed(request: TextRequest, count_tokens: Callable[[str], int]) -> int:
    """Canvas size: each piece of fixed text tokenised alone, plus each gap's blanks."""
    texts, sizes = canvas_gaps(request.prompt, request.length)
    return sum(count_tokens(text) for text in texts if text) + sum(sizes)


def context_problem(request: TextRequest, context: int, count_tokens: Callable[[str], int]) -> str | None:
    """A readable reason when prompt + blanks do not fit a model that reads `context` tokens, else None.

    The hint says what to shorten: the prompt, when its fixed text leaves less than one blank per gap; `length`,
    when every gap takes it (bare `___` marks, or none); else the largest gap (the first of equals) by exactly
    what the canvas is over, or, when that gap alone cannot give that much, down to 1 and the rest from the others
    (they can: the fixed text leaves at least one blank per gap).
    """
    texts, written = parse_gaps(request.prompt)
    sizes = [request.length if size is None else size for size in written]
    fixed = sum(count_tokens(text) for text in texts if text)
    needed = fixed + sum(sizes)
    if needed <= context:
        return None
    gaps, over = len(sizes), needed - context
    room = context - fixed  # what the fixed text leaves for blanks
    if room < gaps:
        hint = "shorten the prompt"
    elif all(size is None for size in written):  # every gap is `length` blanks
        hint = f"use length {room // gaps} or less"
    else:
        largest = max(range(gaps), key=lambda index: (sizes[index], -index))
        size = sizes[largest]
        name = f"gap {largest + 1} ({size} blanks{', the length' if written[largest] is None else ''})"
        if size - over >= 1:
            hint = f"{over} too many; shorten {name} to {size - over} or less"
        else:
            hint = f"{over} too many; shorten {name} to 1 and the other gaps by {over - (size - 1)} in all"
    return f"prompt and blanks need {needed} tokens but the model reads at most {context}: {hint}"
