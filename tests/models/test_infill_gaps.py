"""Infill gaps with their own sizes (`___{8}`): one parser (`models.text.decoding.parse_gaps`) for the request
type, the canvas count, the sampler's canvas and the race; a bare `___` keeps its old meaning byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from models.frames import BLANK, FIXED
from models.text.decoding import (
    INFILL_MARK,
    GapSizeError,
    RaceRequest,
    SamplingError,
    TextRequest,
    canvas_gaps,
    canvas_texts,
    context_problem,
    gap_limit_problem,
    parse_gaps,
    tokens_needed,
)
from models.text.model import load_text_model, untrained_text_model
from models.text.race import AUTOREGRESSIVE, DIFFUSION, autoregressive_request, sample_race, split_gap
from models.text.sample import build_canvas, count_tokens, sample_diffusion

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"


@pytest.fixture(scope="module")
def model():
    return load_text_model(CHECKPOINTS / "text-diffusion")  # the real tokenizer: pieces tokenise as people see


@pytest.fixture(scope="module")
def tiny():
    return untrained_text_model(causal=False), untrained_text_model(causal=True)


def canvas(model, prompt: str, length: int) -> list[int | None]:
    """The canvas as token ids, None for a blank."""
    return [slot.token_id for slot in build_canvas(model, TextRequest(prompt=prompt, length=length))]


def ids(model, text: str) -> list[int]:
    return model.tokenizer.encode(text).ids


def old_canvas(model, prompt: str, length: int) -> list[int | None]:
    """The canvas rule before gaps had sizes, written out: split at every `___` (or, without one, the prompt and
    one gap after it), each piece tokenised alone, `length` blanks between each two pieces."""
    texts = prompt.split("___") if "___" in prompt else [prompt, ""]
    out: list[int | None] = []
    for index, text in enumerate(texts):
        if index:
            out += [None] * length
        out += ids(model, text) if text else []
    return out


# ---- a bare `___` (and a prompt without one) means what it always meant --------------------------------------


@pytest.mark.real_model
def test_a_bare_gap_gives_the_canvas_it_always_gave(model) -> None:
    left, right = "Tom had a red ball. ", " He was sad."
    assert canvas(model, left + "___" + right, 5) == ids(model, left) + [None] * 5 + ids(model, right)
    assert canvas(model, "Once upon a time", 3) == ids(model, "Once upon a time") + [None] * 3


@pytest.mark.real_model
@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "Once upon a time",
        "a ___ b",
        "___ starts, ends ___",
        "one ___ two ___ three",
        "___",
        "______",
        "a ____ b",
        "x {8} ___ {y}",
    ],
)
def test_prompts_without_sizes_keep_their_canvas_byte_for_byte(model, prompt: str) -> None:
    assert canvas(model, prompt, 4) == old_canvas(model, prompt, 4)
    assert canvas_texts(prompt) == (prompt.split(INFILL_MARK) if INFILL_MARK in prompt else [prompt, ""])


# ---- sized gaps --------------------------------------------------------------------------------------------------


@pytest.mark.real_model
def test_a_sized_gap_takes_its_own_number_of_blanks(model) -> None:
    prompt = "The cat ___{3} on the ___{5} mat."
    expected = ids(model, "The cat ") + [None] * 3 + ids(model, " on the ") + [None] * 5 + ids(model, " mat.")
    assert canvas(model, prompt, 64) == expected  # `length` is for bare gaps only
    assert parse_gaps(prompt) == (["The cat ", " on the ", " mat."], [3, 5])


@pytest.mark.real_model
def test_bare_and_sized_gaps_mixed(model) -> None:
    prompt = "a ___ b ___{2} c"
    assert canvas(model, prompt, 4) == ids(model, "a ") + [None] * 4 + ids(model, " b ") + [None] * 2 + ids(model, " c")
    assert canvas_gaps(prompt, 4) == (["a ", " b ", " c"], [4, 2])
    assert TextRequest(prompt=prompt, length=4).gap_sizes == [4, 2]


@pytest.mark.real_model
def test_adjacent_gaps_are_one_run_of_blanks(model) -> None:
    assert parse_gaps("a ___{3}___{4} b") == (["a ", "", " b"], [3, 4])
    assert canvas(model, "a ___{3}___{4} b", 9) == ids(model, "a ") + [None] * 7 + ids(model, " b")


@pytest.mark.real_model
def test_what_follows_a_size_is_text(model) -> None:
    assert parse_gaps("___{8}{x} and ___ {9}") == (["", "{x} and ", " {9}"], [8, None])


@pytest.mark.real_model
@pytest.mark.parametrize(
    "prompt", ["a ___{3} b", "a ___ b ___{2} c", "___{1}", "x ___{4}___{6} y ___", "Tom had a red ball. ___{8} He was sad."]
)
def test_the_count_before_a_job_is_the_samplers_canvas(model, prompt: str) -> None:
    request = TextRequest(prompt=prompt, length=5)
    assert tokens_needed(request, lambda text: count_tokens(model, text)) == len(build_canvas(model, request))


def test_the_sampler_fills_each_sized_gap_and_keeps_the_fixed_text(tiny) -> None:
    diffusion, _ = tiny
    frames = list(sample_diffusion(diffusion, TextRequest(prompt="Hi ___{3} there ___{2} end", length=50, steps=3, seed=1)))
    states = [t.state for t in frames[0].tokens]
    assert states.count(BLANK) == 5 and frames[-1].masked == 0 and frames[-1].step == 3
    fixed = [(i, t.token_id) for i, t in enumerate(frames[0].tokens) if t.state == FIXED]
    assert all([(i, f.tokens[i].token_id) for i, _ in fixed] == fixed for f in frames)


# ---- malformed sizes: the request type refuses them, naming the gap ----------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "gap", "written"),
    [
        ("a ___{0} b", 1, "___{0}"),
        ("a ___ b ___{x} c", 2, "___{x}"),
        ("___{3} ___{} ___{-2}", 2, "___{}"),
        ("a ___{ 8} b", 1, "___{ 8}"),
        ("a ___{8 b", 1, "___{8 b"),
        ("one ___ two ___ three ___{1.5}", 3, "___{1.5}"),
        ("a ___{99999999999} b", 1, "___{99999999999}"),
    ],
)
def test_a_malformed_size_is_a_validation_error_naming_the_gap(prompt: str, gap: int, written: str) -> None:
    for request_type in (TextRequest, RaceRequest):
        with pytest.raises(ValidationError) as refused:
            request_type(prompt=prompt)
        error = refused.value.errors()[0]
        assert error["loc"] == ("prompt",) and error["type"] == "gap_size"
        assert error["msg"].startswith(f"has gap {gap} written {written}")
        assert "from 1 to the length limit, as in ___{8}" in error["msg"]
    with pytest.raises(GapSizeError, match=f"^gap {gap} is written"):
        parse_gaps(prompt)  # an unvalidated prompt (model_copy) meets the same rule
    assert issubclass(GapSizeError, SamplingError)  # and the samplers' callers treat it as a refusal


def test_the_limit_on_a_size_is_the_limit_on_length() -> None:
    assert gap_limit_problem("a ___{192} b ___ c", 192) is None
    assert gap_limit_problem("a ___{3} b ___{193} c", 192) == (
        "gap 2 of the prompt is 193 blanks, over the limit of 192: a gap's size is 1 to 192"
    )
    assert TextRequest(prompt="a ___{999} b").gap_sizes == [999]  # the configured limit is the web layer's to apply


# ---- a template that does not fit names what to shorten ----------------------------------------------------------


def words(text: str) -> int:
    return len(text.split())


def problem(prompt: str, length: int = 64, context: int = 256) -> str | None:
    return context_problem(TextRequest(prompt=prompt, length=length), context, words)


def test_the_largest_gap_is_named_with_what_it_must_lose() -> None:
    # 9 words of fixed text + 8 + 200 + 100 blanks = 317: 61 over; gap 2 can give them all
    assert problem("Tom had a red ball. ___{8} ___{200} ___{100} He was sad today.") == (
        "prompt and blanks need 317 tokens but the model reads at most 256: "
        "61 too many; shorten gap 2 (200 blanks) to 139 or less"
    )
    # it fits once gap 2 is 139
    assert problem("Tom had a red ball. ___{8} ___{139} ___{100} He was sad today.") is None


def test_equal_gaps_name_the_first_and_a_bare_gap_says_it_is_the_length() -> None:
    assert str(problem("a ___{150} b ___{150} c", context=200)).endswith("103 too many; shorten gap 1 (150 blanks) to 47 or less")
    assert str(problem("a ___ b ___{4} c", length=300)).endswith(
        "51 too many; shorten gap 1 (300 blanks, the length) to 249 or less"
    )


def test_when_the_largest_gap_cannot_give_enough_the_others_give_the_rest() -> None:
    # 2 words + 3 x 60 = 182 in a context of 100: 82 over; gap 1 gives 59 (down to 1), the others 23
    message = problem("a ___{60} ___{60} ___{60} b", context=100)
    assert message is not None and message.endswith("82 too many; shorten gap 1 (60 blanks) to 1 and the other gaps by 23 in all")
    assert problem("a ___{1} ___{60} ___{36} b", context=100) is None  # which is what that asks for


def test_the_old_hints_stay_for_bare_gaps_and_an_overlong_prompt() -> None:
    # the prompt: eight bare gaps share `length`
    eight = "Tom had a red ball. ___ ___ ___ ___ ___ ___ ___ ___ He was sad."
    assert problem(eight) == "prompt and blanks need 520 tokens but the model reads at most 256: use length 31 or less"
    assert problem("a b c", length=18, context=20) == (
        "prompt and blanks need 21 tokens but the model reads at most 20: use length 17 or less"
    )
    assert str(problem("a b c d e ___{1} f ___{1}", context=7)).endswith(
        ": shorten the prompt"
    )  # 6 words leave 1 blank for 2 gaps


@pytest.mark.real_model
def test_the_sampler_refuses_a_template_that_does_not_fit_before_any_work(model) -> None:
    request = TextRequest(prompt="Tom had a red ball. ___{8} ___{300} He was sad.")
    with pytest.raises(SamplingError, match=r"too many; shorten gap 2 \(300 blanks\) to \d+ or less$"):
        next(iter(sample_diffusion(model, request)))


# ---- the race: one gap, sized or bare ----------------------------------------------------------------------------


def test_the_race_splits_a_sized_gap_without_its_size() -> None:
    assert split_gap("a ___{8} b") == ("a ", " b")
    assert split_gap("a ___ b") == ("a ", " b")
    with pytest.raises(SamplingError, match="has 2 '___' marks"):
        split_gap("a ___{3}___{4} b")
    with pytest.raises(SamplingError, match="needs text before the gap"):
        split_gap("___{4} b")


def test_the_ar_lane_writes_as_many_tokens_as_the_gap_has_blanks() -> None:
    request = RaceRequest(prompt="Tom had a ball. ___{6} He was sad.", length=40)
    ar, unseen = autoregressive_request(request)
    assert (ar.prompt, ar.length, unseen) == ("Tom had a ball. ", 6, " He was sad.")
    bare, unseen = autoregressive_request(RaceRequest(prompt="Tom had a ball. ___ He was sad.", length=40))
    assert (bare.prompt, bare.length, unseen) == ("Tom had a ball. ", 40, " He was sad.")
    assert autoregressive_request(RaceRequest(prompt="Once", length=7)) == (RaceRequest(prompt="Once", length=7), "")


def test_an_infill_race_with_a_sized_gap(tiny) -> None:
    diffusion, ar = tiny
    request = TextRequest(prompt="Tom had a ball. ___{6} He was sad.", length=40, steps=3, seed=1)
    frames = list(sample_race(diffusion, ar, request))
    first = {lane.name: lane for lane in frames[0].lanes}
    last = {lane.name: lane for lane in frames[-1].lanes}
    assert first[DIFFUSION].frame.masked == 6 and first[AUTOREGRESSIVE].frame.masked == 6
    assert last[DIFFUSION].frame.forward_passes == 3 and last[AUTOREGRESSIVE].frame.forward_passes == 6
    assert frames[-1].step == frames[-1].total == 6
    assert last[AUTOREGRESSIVE].unseen == " He was sad." and "{6}" not in last[AUTOREGRESSIVE].frame.text
    right = diffusion.tokenizer.encode(" He was sad.").ids
    assert [t.token_id for t in last[DIFFUSION].frame.tokens][-len(right) :] == right
    assert last[DIFFUSION].frame.masked == 0 and last[AUTOREGRESSIVE].frame.masked == 0
