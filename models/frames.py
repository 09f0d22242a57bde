"""The frames samplers yield: the only thing that crosses from `models/` to the web layer.

One immutable frame per denoising step. Text frames describe every position of the canvas;
image frames carry uint8 arrays ready to encode as PNG.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Per-position state of a text frame.
BLANK = "blank"  # still [MASK]; `guess` is the model's current top prediction
FIXED = "fixed"  # given by the user (prompt or infill context), never changed
COMMITTED = "committed"  # decided by the model in an earlier step
NEW = "new"  # decided by the model in this step
REMASKED = "remasked"  # was committed, sent back to blank in this step (ReMDM); blank again


@dataclass(frozen=True)
class TokenAlternative:
    text: str
    probability: float


@dataclass(frozen=True)
class TextToken:
    state: str  # one of BLANK, FIXED, COMMITTED, NEW, REMASKED
    token_id: int | None  # None while blank
    text: str  # decoded piece ("" while blank)
    confidence: float  # probability the model gave the committed token when it chose it (1.0 fixed)
    guess: str = ""  # top guess under a blank
    alternatives: tuple[TokenAlternative, ...] = ()  # top-k under a blank, or at commit time
    committed_at: int | None = None  # step at which the current token was committed
    remask_count: int = 0  # how often this position was sent back to blank
    was: str = ""  # while blank after being sent back: the text it had (shown struck through until decided again)


@dataclass(frozen=True)
class TextQuality:
    """What the independent judge (`models.text.judge`) made of a finished text: per-word perplexity (lower
    reads better) and the share of real words; None where the text had no words to score."""

    judge_ppl: float | None
    real_words: float | None
    words: int
    judge: str = "text-judge"

    def as_json(self) -> dict[str, float | int | str | None]:
        return {"judge_ppl": self.judge_ppl, "real_words": self.real_words, "words": self.words, "judge": self.judge}


@dataclass(frozen=True)
class MarkedWord:
    text: str
    mark: str  # SAME, CHANGED or EDITED (the changed word itself)


SAME, CHANGED, EDITED = "same", "changed", "edited"


@dataclass(frozen=True)
class Rework:
    """A finished rework (`models.text.rework`) against the text it started from: both texts word by word, each word
    marked, and how many words changed on each side of the edited word."""

    old: tuple[MarkedWord, ...]  # the base run's text (prompt included), words that are gone marked CHANGED
    new: tuple[MarkedWord, ...]  # this lane's text, words that are new marked CHANGED
    changed_before: int  # words that differ before the edited word (a replaced run counts its longer side)
    changed_after: int
    at: int  # the edited word's number among the base run's generated words
    old_word: str
    new_word: str
    base_words: tuple[str, ...]  # the base run's generated words as `edit_at` counts them (what a next edit picks)
    redo: str
    window: int
    base_passes: int  # what the base run cost (a rework pays it again only when the base is not cached)
    base_quality: TextQuality | None = None  # the judge's figures for the old text

    @property
    def words_before(self) -> int:
        """The base's generated words on each side of the edited one (what could have changed)."""
        return self.at

    @property
    def words_after(self) -> int:
        return len(self.base_words) - self.at - 1


@dataclass(frozen=True)
class TextFrame:
    step: int  # 0 = initial canvas, total = final
    total: int
    tokens: tuple[TextToken, ...]
    forward_passes: int  # model evaluations so far
    committed: tuple[int, ...] = ()  # positions decided in this step
    remasked: tuple[int, ...] = ()  # positions sent back to blank in this step
    model: str = "diffusion"  # "diffusion" or "ar"
    quality: TextQuality | None = None  # the judge's figures: set on a finished run's last frame only
    baseline: TextQuality | None = None  # with remasking: the same request and seed without it (before -> after)
    rework: Rework | None = None  # a rework's last frame: the before/after comparison

    @property
    def masked(self) -> int:
        return sum(t.state in (BLANK, REMASKED) for t in self.tokens)

    @property
    def generated(self) -> int:
        return sum(t.state != FIXED for t in self.tokens)

    @property
    def decided(self) -> int:
        return self.generated - self.masked

    @property
    def text(self) -> str:
        return "".join(t.text if t.state not in (BLANK, REMASKED) else "___" for t in self.tokens)


@dataclass(frozen=True)
class ImageFrame:
    step: int  # 0 = pure noise (or the starting image), total = final
    total: int
    timestep: int  # diffusion timestep t in [0, 999] of this state
    xt: np.ndarray = field(repr=False)  # uint8 (N, H, W): the noisy state x_t
    x0: np.ndarray = field(repr=False)  # uint8 (N, H, W): the model's guess of the clean image
    noise_level: float = 1.0  # sqrt(1 - alpha_bar_t): share of the signal that is noise
    forward_passes: int = 0
    eps: np.ndarray | None = field(default=None, repr=False)  # uint8 (N, H, W) predicted noise, optional
    note: str = ""  # e.g. "jump back" during RePaint resampling
    digit_probabilities: tuple[tuple[float, ...], ...] = ()  # classifier on x0, per image, when available
    # The image lab: the real digit a run started from (uint8 (H, W)) and, when inpainting, the pixels it keeps.
    reference: np.ndarray | None = field(default=None, repr=False)
    keep: np.ndarray | None = field(default=None, repr=False)  # bool (H, W), True = kept from `reference`
