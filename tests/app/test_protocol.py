"""Request validation: every limit at its edge, malformed input, readable reasons, URL round trip."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from app.demos.protocol import check_limits, close_reason, from_query, parse_request
from app.engine.interface import run_key
from app.errors import Close, RequestError
from app.settings import Settings
from app.web.query import to_query
from models.image.request import ImageRequest
from models.text.decoding import TextRequest

SETTINGS = Settings(max_prompt_chars=20, max_length=70, max_text_steps=70, max_image_steps=50, max_message_bytes=300)


def parse(kind: str, payload: object) -> BaseModel:
    return parse_request(kind, payload if isinstance(payload, str | bytes) else json.dumps(payload), SETTINGS)


def reason(kind: str, payload: object) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse(kind, payload)
    return caught.value


def test_defaults_are_valid() -> None:
    assert parse("text", {}) == TextRequest()
    assert parse("image", {}) == ImageRequest()


def test_text_defaults_are_the_models_default_decoding() -> None:
    from models.text.decoding import DEFAULT_DECODING

    request = TextRequest()
    assert (request.strategy, request.temperature, request.block_length) == (
        DEFAULT_DECODING.strategy,
        DEFAULT_DECODING.temperature,
        DEFAULT_DECODING.block_length,
    )


@pytest.mark.parametrize(
    ("kind", "field", "limit", "word"),
    [
        ("text", "length", 70, "length"),
        ("text", "steps", 70, "steps"),
        ("image", "steps", 50, "steps"),
    ],
)
def test_numeric_limits_at_the_edge(kind: str, field: str, limit: int, word: str) -> None:
    assert getattr(parse(kind, {field: limit}), field) == limit
    error = reason(kind, {field: limit + 1})
    assert word in error.message and str(limit) in error.message
    assert error.code == Close.POLICY


def test_prompt_length_at_the_edge() -> None:
    request = parse("text", {"prompt": "x" * 20})
    assert isinstance(request, TextRequest) and request.prompt == "x" * 20
    error = reason("text", {"prompt": "x" * 21})
    assert "prompt is too long" in error.message and "20" in error.message


def test_message_size_at_the_edge() -> None:
    body = json.dumps({"seed": 1})
    exact = body + " " * (300 - len(body))
    assert len(exact.encode()) == 300
    assert parse("text", exact) == TextRequest(seed=1)
    error = reason("text", exact + " ")
    assert error.code == Close.TOO_BIG and "301 bytes" in error.message and "300" in error.message


@pytest.mark.parametrize(
    ("payload", "expect"),
    [
        ("not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('{"temperature": NaN}', "NaN is not a valid number"),
        ('{"temperature": Infinity}', "Infinity is not a valid number"),
        ('{"temperature": -Infinity}', "not a valid number"),
        ('{"temperature": 1e999}', "temperature"),
        ('{"steps": "5"}', "steps should be a valid integer"),
        ('{"steps": 5.0}', "steps should be a valid integer"),
        ('{"steps": true}', "steps should be a valid integer"),
        ('{"steps": 0}', "steps should be greater than or equal to 1"),
        ('{"seed": -1}', "seed"),
        ('{"seed": 4294967296}', "seed"),
        ('{"strategy": "best"}', "strategy should be"),
        ('{"remask": 1}', "remask"),
        ('{"prompt": 5}', "prompt should be a valid string"),
        ('{"extra": 1}', "unknown field 'extra'"),
        ('{"prompt": "a\\u0000b"}', "control character U+0000"),
        ('{"prompt": "a\\u001bb"}', "control character U+001B"),
        ('{"prompt": "\\ud800"}', "unpaired surrogate"),
        ('{"block_length": 71}', "block_length 71 is over the limit of 70"),
        ("[" * 290, "not valid JSON"),
        ('{"seed": ' + "9" * 250 + "}", "seed"),
    ],
)
def test_malformed_text_requests_have_readable_reasons(payload: str, expect: str) -> None:
    error = reason("text", payload)
    assert expect in error.message
    assert "Traceback" not in error.message and len(error.message) < 300


def test_deep_nesting_is_refused_not_crashed() -> None:
    roomy = Settings(max_message_bytes=200_000)
    with pytest.raises(RequestError) as caught:
        parse_request("text", "[" * 100_000 + "]" * 100_000, roomy)
    assert "not valid JSON" in caught.value.message


def test_newlines_and_tabs_are_fine_in_prompts() -> None:
    request = parse("text", {"prompt": "a\nb\tc"})
    assert isinstance(request, TextRequest) and request.prompt == "a\nb\tc"


@pytest.mark.parametrize(
    ("payload", "expect"),
    [
        ({"digit": 10}, "digit"),
        ({"digit": "3"}, "digit"),
        ({"guidance": 11}, "guidance"),
        ({"sampler": "euler"}, "sampler should be 'ddim', 'ddpm' or 'dpm'"),
        ({"prompt": "hi"}, "unknown field 'prompt'"),
    ],
)
def test_malformed_image_requests(payload: dict[str, object], expect: str) -> None:
    assert expect in reason("image", payload).message


def test_null_digit_means_unconditional() -> None:
    request = parse("image", {"digit": None})
    assert isinstance(request, ImageRequest) and request.digit is None


def test_binary_is_refused_with_1003() -> None:
    error = reason("text", b'{"seed": 1}')
    assert error.code == Close.UNSUPPORTED_DATA and "binary" in error.message


def test_many_problems_are_summarised() -> None:
    message = reason("text", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}).message
    assert "and 2 more problems" in message


def test_close_reasons_fit_in_123_bytes() -> None:
    assert close_reason("ok") == "ok"
    long = close_reason("é" * 200)
    assert len(long.encode()) <= 123 and long.endswith("...")


def test_canonical_key_ignores_field_order() -> None:
    a = parse("text", '{"seed": 3, "steps": 4}')
    b = parse("text", '{"steps": 4, "seed": 3}')
    assert run_key("text", a) == run_key("text", b)
    assert run_key("text", a) != run_key("image", a)


# ---- URL round trip ------------------------------------------------------------------------------------

text_requests = st.builds(
    TextRequest,
    prompt=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
    length=st.integers(1, 70),
    steps=st.integers(1, 70),
    strategy=st.sampled_from(["confidence", "random", "margin", "entropy"]),
    temperature=st.floats(0, 2, allow_nan=False),
    block_length=st.just(0),
    remask=st.sampled_from(["none", "cap", "conf", "loop"]),
    seed=st.integers(0, 2**32 - 1),
)
image_requests = st.builds(
    ImageRequest,
    digit=st.none() | st.integers(0, 9),
    guidance=st.floats(0, 10, allow_nan=False),
    sampler=st.sampled_from(["ddim", "ddpm", "dpm"]),
    steps=st.integers(1, 50),
    seed=st.integers(0, 2**32 - 1),
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(text_requests, image_requests))
def test_url_round_trip(request: TextRequest | ImageRequest) -> None:
    kind = "text" if isinstance(request, TextRequest) else "image"
    parsed, notes = from_query(kind, to_query(request), SETTINGS)
    assert notes == []
    assert parsed == request


def test_bad_query_values_fall_back_with_a_note() -> None:
    parsed, notes = from_query("image", {"steps": "many", "digit": "none", "guidance": "nan", "x": "1"}, SETTINGS)
    assert parsed == ImageRequest(digit=None)
    assert any("steps" in n for n in notes) and any("guidance" in n for n in notes)
    parsed, notes = from_query("text", {"length": "71"}, SETTINGS)
    assert parsed == TextRequest() and "length 71 is over the limit" in notes[0]


def test_one_over_limit_query_value_drops_only_that_field() -> None:
    at_edge, notes = from_query("text", {"prompt": "hi", "seed": "5", "length": "70"}, SETTINGS)
    assert at_edge == TextRequest(prompt="hi", seed=5, length=70) and notes == []
    parsed, notes = from_query("text", {"prompt": "hi", "seed": "5", "length": "71", "steps": "71"}, SETTINGS)
    assert parsed == TextRequest(prompt="hi", seed=5)  # length and steps fall back to their defaults, alone
    assert len(notes) == 2
    assert "ignored length='71'" in notes[0] and "using 64" in notes[0]
    assert "ignored steps='71'" in notes[1] and "steps 71 is over the limit of 70" in notes[1]
    parsed, notes = from_query("text", {"prompt": "a" * 21, "seed": "9"}, SETTINGS)
    assert parsed == TextRequest(seed=9) and "prompt is too long" in notes[0]
    parsed, notes = from_query("text", {"length": "10", "block_length": "71", "seed": "3"}, SETTINGS)
    assert parsed == TextRequest(length=10, seed=3) and "block_length 71 is over the limit of 70" in notes[0]
    parsed, notes = from_query("text", {"length": "4", "block_length": "70"}, SETTINGS)  # longer than the canvas: one block
    assert parsed == TextRequest(length=4, block_length=70) and notes == []
    parsed, notes = from_query("image", {"digit": "7", "steps": "51", "seed": "4"}, SETTINGS)
    assert parsed == ImageRequest(digit=7, seed=4) and "steps 51 is over the limit of 50" in notes[0]


# ---- fuzzing: any input is either a valid request that round-trips, or refused with a reason that names --
# ---- what is wrong ----------------------------------------------------------------------------------------

KINDS: dict[str, type[BaseModel]] = {"text": TextRequest, "image": ImageRequest}


def valid_alone(kind: str, key: str, value: object) -> bool:
    """Whether this one field, the others left at their defaults, is a valid request (schema, then limits)."""
    try:
        check_limits(kind, KINDS[kind].model_validate({key: value}, strict=True), SETTINGS)
    except (ValidationError, RequestError):
        return False
    return True


def names(message: str, field: str) -> bool:
    """`field` appears in `message` as a name of its own (`length` is not named by `block_length ...`)."""
    return re.search(rf"(?<!\w){re.escape(field)}(?!\w)", message) is not None


def has_non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(has_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    return False


def check_parse(kind: str, raw: str | bytes) -> None:
    """Parse `raw` and check the outcome against what `raw` is: a refusal names the problem, or the fields at
    fault and no other; a valid request survives the URL and the canonical key unchanged."""
    try:
        result = parse_request(kind, raw, SETTINGS)
        error = None
    except RequestError as caught:
        result, error = None, caught
    if error is not None:
        assert error.message and "Traceback" not in error.message
    if isinstance(raw, bytes):
        assert error is not None and error.code == Close.UNSUPPORTED_DATA and "binary" in error.message
        return
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > SETTINGS.max_message_bytes:
        assert error is not None and error.code == Close.TOO_BIG
        assert error.message == f"message is too big: {size} bytes, the limit is {SETTINGS.max_message_bytes}"
        return
    non_finite = re.compile(r"^(NaN|-?Infinity) is not a valid number: JSON numbers must be finite$")
    try:
        data = json.loads(raw)  # Python's own reading (it accepts NaN and Infinity, the protocol does not)
    except (ValueError, RecursionError):
        assert error is not None and error.code == Close.POLICY, raw
        # the syntax error, or a NaN/Infinity read before it
        assert error.message.startswith("message is not valid JSON: ") or non_finite.match(error.message)
        return
    if has_non_finite(data):
        assert error is not None and error.code == Close.POLICY and non_finite.match(error.message), raw
        return
    if not isinstance(data, dict):
        assert error is not None and error.code == Close.POLICY
        assert error.message == f"the request must be a JSON object, got {type(data).__name__}"
        return
    at_fault = {key for key, value in data.items() if not valid_alone(kind, key, value)}
    if at_fault:  # the fields are independent: the request is refused, naming a field at fault and no other
        assert error is not None and error.code == Close.POLICY, (raw, at_fault)
        assert any(names(error.message, key) for key in at_fault), (error.message, at_fault)
        assert not any(names(error.message, key) for key in set(data) - at_fault), (error.message, at_fault)
        assert error.field is None or error.field in at_fault
        return
    assert error is None, (raw, error.message)
    assert isinstance(result, KINDS[kind])
    assert result.model_dump() == {**KINDS[kind]().model_dump(), **data}  # the values sent, defaults for the rest
    again, notes = from_query(kind, to_query(result), SETTINGS)  # the page link carries exactly this run
    assert again == result and notes == []
    assert run_key(kind, again) == run_key(kind, result)
    spelled_out = parse_request(kind, json.dumps(result.model_dump(mode="json")), SETTINGS)
    assert run_key(kind, spelled_out) == run_key(kind, result)  # defaults sent or left out: one run


keys = st.text(max_size=8)  # the empty key too: it is named as '' ("unknown field ''")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "prompt",
        "length",
        "steps",
        "strategy",
        "temperature",
        "block_length",
        "remask",
        "seed",
        "digit",
        "guidance",
        "sampler",
        "headers",
        "type",
    ]
)
# Values near the valid ones too, so that valid requests (and the limits' edges) come up often.
near_values = st.one_of(
    json_values,
    st.integers(-2, 80),
    st.floats(-1, 12),
    st.sampled_from(
        [
            "confidence",
            "random",
            "margin",
            "entropy",
            "none",
            "cap",
            "conf",
            "loop",
            "ddim",
            "ddpm",
            "dpm",
            "Once upon a time",
            "a" * 21,
            "tab\there",
            "bell\x07",
        ]
    ),
)
near_requests = st.dictionaries(field_names, near_values, max_size=6)
# Each field of a kind with values on both sides of its bounds: valid requests come up often, and so do
# requests with one or two fields just over a limit.
seeds = st.integers(-1, 2**32)
plausible = {
    "text": st.fixed_dictionaries(
        {},
        optional={
            "prompt": st.text(max_size=24),
            "length": st.integers(-1, 72),
            "steps": st.integers(-1, 72),
            "strategy": st.sampled_from(["confidence", "random", "margin", "entropy", "greedy"]),
            "temperature": st.floats(-0.5, 2.5) | st.integers(0, 3),
            "block_length": st.integers(-1, 72),
            "remask": st.sampled_from(["none", "cap", "conf", "loop", "always"]),
            "seed": seeds,
        },
    ),
    "image": st.fixed_dictionaries(
        {},
        optional={
            "digit": st.none() | st.integers(-1, 10),
            "guidance": st.floats(-1, 11) | st.integers(0, 11),
            "sampler": st.sampled_from(["ddim", "ddpm", "dpm", "euler"]),
            "steps": st.integers(-1, 52),
            "seed": seeds,
        },
    ),
}
cases = st.sampled_from(["text", "image"]).flatmap(
    lambda kind: st.tuples(st.just(kind), st.one_of(plausible[kind], near_requests, json_values))
)


@settings(max_examples=400, deadline=None)
@given(case=cases)
def test_fuzz_schema(case: tuple[str, object]) -> None:
    kind, payload = case
    check_parse(kind, json.dumps(payload))  # json.dumps writes NaN and Infinity, so those come up too


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["text", "image"]),
    raw=st.text(max_size=400)
    | st.binary(max_size=50)
    | st.tuples(near_requests.map(json.dumps), st.integers(0, 120)).map(lambda t: t[0][: t[1]]),  # cut short
)
def test_fuzz_raw_messages(kind: str, raw: str | bytes) -> None:
    check_parse(kind, raw)


def test_an_empty_key_is_named_as_empty() -> None:
    assert reason("text", {"": 1}).message == "invalid request: unknown field ''"
