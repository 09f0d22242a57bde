"""Change a word and rework the text (models.text.rework) on the committed checkpoints: every word outside the redo
region kept exactly, the new word at its place, the twin keeping every token before the edit, and the same request
giving the same frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from models.frames import CHANGED, EDITED, FIXED, TextFrame, TextToken
from models.requests import SamplingError
from models.text.decoding import RaceRequest, TextRequest
from models.text.model import TextModel, load_text_model
from models.text.race import AUTOREGRESSIVE, DIFFUSION
from models.text.rework import edit_problem, generated_words, rework_frames, rework_race
from models.text.sample import count_tokens, sample_autoregressive, sample_diffusion

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
BASE = TextRequest(prompt="Once upon a time, there was a little girl named Lily. She was very", length=32, steps=32, seed=5)
pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def diffusion() -> TextModel:
    return load_text_model(CHECKPOINTS / "text-diffusion")


@pytest.fixture(scope="module")
def twin() -> TextModel:
    return load_text_model(CHECKPOINTS / "text-ar")


def decode(model: TextModel) -> Callable[[list[TextToken]], str]:
    return lambda tokens: str(model.tokenizer.decode([t.token_id or 0 for t in tokens], skip_special_tokens=False))


def sampler(model: TextModel) -> Callable[[TextRequest, Callable[[], bool] | None], Iterator[TextFrame]]:
    def sample(request: TextRequest, stop: Callable[[], bool] | None = None) -> Iterator[TextFrame]:
        return sample_diffusion(model, request)

    return sample


def finished(frames: Iterator[TextFrame]) -> TextFrame:
    *_, last = frames
    assert last.masked == 0
    return last


def text(model: TextModel, tokens: list[TextToken] | tuple[TextToken, ...]) -> str:
    return decode(model)(list(tokens))


def rework(model: TextModel, **edit: object) -> tuple[TextFrame, TextFrame]:
    request = BASE.model_copy(update=edit)
    base = finished(sample_diffusion(model, BASE))
    frames = rework_frames(sampler(model), decode(model), lambda t: count_tokens(model, t), model.context, request)
    return base, finished(frames)


@pytest.mark.parametrize(("at", "window"), [(0, 3), (6, 2), (10, 4)])
def test_a_window_rework_keeps_every_word_outside_it_and_puts_the_new_word_in_place(
    diffusion: TextModel, at: int, window: int
) -> None:
    base, last = rework(diffusion, edit_at=at, edit_word="happy", redo="window", window=window)
    words = generated_words(base.tokens)
    low, high = words[max(0, at - window)].start, words[min(len(words) - 1, at + window)].stop
    kept_before, kept_after = text(diffusion, base.tokens[:low]), text(diffusion, base.tokens[high:])
    new_text = text(diffusion, last.tokens)
    assert new_text.startswith(kept_before) and new_text.endswith(kept_after)
    old_word = text(diffusion, base.tokens[words[at].start : words[at].stop])
    leading = old_word[: len(old_word) - len(old_word.lstrip())]
    middle = new_text[len(kept_before) : len(new_text) - len(kept_after)]
    assert leading + "happy" in middle  # the new word, fixed, inside the rewritten region
    assert last.rework is not None
    assert [w.text for w in last.rework.new if w.mark == EDITED] == ["happy"]
    assert last.rework.words_before == at and last.rework.words_after == len(words) - at - 1
    # fewer passes than the base: as many tokens a pass, over the region only
    assert last.forward_passes < base.forward_passes


def test_redo_after_keeps_everything_before_the_word_and_all_keeps_only_the_prompt(diffusion: TextModel) -> None:
    base, after = rework(diffusion, edit_at=5, edit_word="dog", redo="after")
    word = generated_words(base.tokens)[5]
    before = text(diffusion, base.tokens[: word.start])
    assert text(diffusion, after.tokens).startswith(before)
    assert after.rework is not None and after.rework.changed_before == 0
    _, everything = rework(diffusion, edit_at=5, edit_word="dog", redo="all")
    assert text(diffusion, everything.tokens).startswith(BASE.prompt)
    old_word = text(diffusion, base.tokens[word.start : word.stop])
    leading = old_word[: len(old_word) - len(old_word.lstrip())]
    # nothing fixed but the prompt and the new word: every other word was written again
    assert text(diffusion, [t for t in everything.tokens if t.state == FIXED]) == BASE.prompt + leading + "dog"


def test_the_same_rework_gives_the_same_frames(diffusion: TextModel) -> None:
    request = BASE.model_copy(update={"edit_at": 3, "edit_word": "red", "window": 3})
    runs = [
        list(rework_frames(sampler(diffusion), decode(diffusion), lambda t: count_tokens(diffusion, t), 256, request))
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_the_race_rework_twin_keeps_every_token_before_the_edit(diffusion: TextModel, twin: TextModel) -> None:
    request = RaceRequest(**{**BASE.model_dump(), "edit_at": 4, "edit_word": "sad", "window": 2})
    base = finished(sample_diffusion(diffusion, BASE))
    word = generated_words(base.tokens)[4]
    before = text(diffusion, base.tokens[: word.start])

    def ar(r: TextRequest, stop: Callable[[], bool] | None = None) -> Iterator[TextFrame]:
        return sample_autoregressive(twin, r)

    *_, last = rework_race(sampler(diffusion), ar, decode(diffusion), lambda t: count_tokens(diffusion, t), 256, request)
    lanes = {lane.name: lane for lane in last.lanes}
    ar_frame = lanes[AUTOREGRESSIVE].frame
    fixed = [t for t in ar_frame.tokens if t.state == FIXED]
    leading = text(diffusion, base.tokens[word.start : word.stop])
    leading = leading[: len(leading) - len(leading.lstrip())]
    assert text(twin, fixed) == before + leading + "sad"  # it reads all of it, changes none of it
    assert ar_frame.rework is not None and ar_frame.rework.changed_before == 0
    assert ar_frame.generated == len(base.tokens) - word.stop  # it writes as many tokens as followed the word
    diffusion_rework = lanes[DIFFUSION].frame.rework
    assert diffusion_rework is not None
    # outside its window the diffusion lane changed nothing; the twin had to write everything after the word
    assert diffusion_rework.changed_after <= 2 * request.window + 2
    assert any(w.mark == CHANGED for w in ar_frame.rework.new)


def test_bad_edits_are_refused_with_the_field_named(diffusion: TextModel) -> None:
    base = finished(sample_diffusion(diffusion, BASE))
    count = len(generated_words(base.tokens))
    with pytest.raises(SamplingError, match=f"edit_at is {count}, but the run wrote {count} words: pick 0 to {count - 1}"):
        rework(diffusion, edit_at=count, edit_word="x")
    rework(diffusion, edit_at=count - 1, edit_word="x", redo="window")  # the last word: the edge that works
    with pytest.raises(SamplingError, match="redo=after leaves nothing to write again"):
        rework(diffusion, edit_at=count - 1, edit_word="x", redo="after")
    long_word = " ".join(["elephant"] * 4)
    full = BASE.model_copy(update={"length": 256 - count_tokens(diffusion, BASE.prompt), "steps": 8})
    with pytest.raises(SamplingError, match=r"edit_word makes the text .* over the model's context of 256"):
        list(
            rework_frames(
                sampler(diffusion),
                decode(diffusion),
                lambda t: count_tokens(diffusion, t),
                256,
                full.model_copy(update={"edit_at": 0, "edit_word": long_word[:40]}),
            )
        )
    assert edit_problem(BASE.model_copy(update={"edit_at": 1})) == (
        "edit_word",
        "edit_word is empty: type the word that replaces word 1",
    )
    assert edit_problem(BASE.model_copy(update={"edit_word": "x"}))[0] == "edit_at"  # type: ignore[index]
    assert edit_problem(BASE.model_copy(update={"edit_at": 0, "edit_word": "a___b"}))[0] == "edit_word"  # type: ignore[index]
