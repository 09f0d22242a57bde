"""The websocket protocol: request schemas, validation with human-readable reasons, close codes.

A client opens `/ws/<kind>` (a kind of `REQUESTS`: `/ws/text`, `/ws/image`, `/ws/race`, `/ws/race/image`,
`/ws/image/grid`, `/ws/image/samplers`), sends ONE JSON request (that kind's request object), and receives
`queued`* `frame`+ `done` (or one `error`) messages. See docs/protocol.md.
The same schemas parse the page query strings, so a URL and a websocket request describe one run.

The request types are the samplers' own (`models.text.decoding`, `models.image.request`: torch-free), so a
validated request goes to a sampler as it is; what only the web layer limits (`Settings`) is `check_limits`'.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from app.settings import Settings
from models.image.request import (  # the samplers' own request types: import them from here
    LAB_FIELDS,
    ImageRaceRequest,
    ImageRequest,
    ImageSamplersRequest,
    lab_problem,
)
from models.text.decoding import RaceRequest, TextRequest, gap_limit_problem


class Close(IntEnum):
    """Websocket close codes we use (RFC 6455 + IANA registry)."""

    DONE = 1000
    UNSUPPORTED_DATA = 1003  # binary frame
    POLICY = 1008  # invalid request, limits, refused origin
    TOO_BIG = 1009
    SERVER_FAULT = 1011
    SHUTDOWN = 1012
    BUSY = 1013


Request = TextRequest | ImageRequest | ImageRaceRequest | ImageSamplersRequest  # RaceRequest is a TextRequest
# Each demo's kind (its page path and websocket path after /ws/) -> its request type. A kind, not a type, names a
# run: the grid takes the image page's request (and samples 16 of it), so both kinds share `ImageRequest`.
REQUESTS: dict[str, type[TextRequest] | type[ImageRequest] | type[ImageRaceRequest] | type[ImageSamplersRequest]] = {
    "text": TextRequest,
    "image": ImageRequest,
    "race": RaceRequest,
    "race/image": ImageRaceRequest,  # the image race: the DDPM against the pixel-by-pixel autoregressive model
    "image/grid": ImageRequest,  # 16 samples of the image request at once
    "image/samplers": ImageSamplersRequest,  # DDPM, DDIM and DPM-Solver++ side by side
}
SAMPLERS_STEPS = ("ddpm_steps", "ddim_steps", "dpm_steps")  # each samplers lane's steps, held to max_image_steps


def client_fields(model: type[Request]) -> dict[str, FieldInfo]:
    """The fields a client may send: all but those the samplers keep for their other callers (`exclude`d from
    dumps and the JSON schema, as the image request's `batch`: the web always samples one image)."""
    return {name: field for name, field in model.model_fields.items() if not field.exclude}


class RequestError(ValueError):
    """A client mistake. `message` is shown to the person; `code` closes the socket; `field` names the
    request field at fault, where there is one (a page drops just that field from its URL)."""

    def __init__(self, message: str, code: Close = Close.POLICY, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


def canonical_key(kind: str, request: Request) -> str:
    """Identical runs share one key: seeded sampling is deterministic, so the key names a trajectory."""
    return f"{kind}:{json.dumps(request.model_dump(mode='json'), sort_keys=True, separators=(',', ':'))}"


# ---------------------------------------------------------------------------------------------------------
# Validation


def _reject_constant(name: str) -> Any:
    raise RequestError(f"{name} is not a valid number: JSON numbers must be finite")


def _bad_characters(text: str) -> str | None:
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if char in "\n\t":
            continue
        if category == "Cc":
            return f"a control character U+{ord(char):04X} at position {index}"
        if category == "Cs":
            return f"an unpaired surrogate U+{ord(char):04X} at position {index}"
    return None


def _describe(error: Mapping[str, Any]) -> str:
    loc = error.get("loc", ())
    where = ".".join(str(part) for part in loc) if loc else "request"  # an empty key is named as '', not 'request'
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"unknown field '{where}'"
    if kind == "model_type" or kind == "dict_type":
        return "the request must be a JSON object"
    message = str(error.get("msg", "is invalid"))
    message = message.replace("Input should be", "should be")
    return f"{where} {message}"


def describe_validation_error(error: ValidationError | list[Mapping[str, Any]], limit: int = 3) -> str:
    errors = error.errors(include_url=False) if isinstance(error, ValidationError) else error
    parts = [_describe(e) for e in errors[:limit]]
    more = len(errors) - limit
    if more > 0:
        parts.append(f"and {more} more problem{'s' if more > 1 else ''}")
    return "invalid request: " + "; ".join(parts)


def check_limits(kind: str, request: Request, settings: Settings) -> None:
    """Limits from settings, with the numbers in the message so a person knows what to change."""
    if isinstance(request, TextRequest):
        if len(request.prompt) > settings.max_prompt_chars:
            raise RequestError(
                f"prompt is too long: {len(request.prompt)} characters, the limit is {settings.max_prompt_chars}",
                field="prompt",
            )
        bad = _bad_characters(request.prompt)
        if bad:
            raise RequestError(f"prompt contains {bad}; only printable text, newlines and tabs are allowed", field="prompt")
        if request.length > settings.max_length:
            raise RequestError(f"length {request.length} is over the limit of {settings.max_length} tokens", field="length")
        gap_problem = gap_limit_problem(request.prompt, settings.max_length)  # each ___{n} is held to the same limit
        if gap_problem:
            raise RequestError(gap_problem, field="prompt")
        if request.steps > settings.max_text_steps:
            raise RequestError(f"steps {request.steps} is over the limit of {settings.max_text_steps}", field="steps")
        # A block as long as the canvas or longer is one block (so the default suits any length).
        if request.block_length > settings.max_length:
            raise RequestError(
                f"block_length {request.block_length} is over the limit of {settings.max_length} tokens",
                field="block_length",
            )
    elif isinstance(request, ImageRequest | ImageRaceRequest):  # the image race's steps are the DDPM lane's
        if request.steps > settings.max_image_steps:
            raise RequestError(f"steps {request.steps} is over the limit of {settings.max_image_steps}", field="steps")
        lab = lab_problem(request) if isinstance(request, ImageRequest) else None  # source, start_t, mask
        if lab:
            raise RequestError(lab[1], field=lab[0])
        if kind == "image/grid" and isinstance(request, ImageRequest):
            for name in LAB_FIELDS:  # 16 samples from noise: a held-out digit to start from is the image page's
                if getattr(request, name) is not None:
                    raise RequestError(f"{name} is not for the grid, which starts 16 samples from noise: use /image", field=name)
    elif isinstance(request, ImageSamplersRequest):
        for name in SAMPLERS_STEPS:
            steps = getattr(request, name)
            if steps > settings.max_image_steps:
                raise RequestError(f"{name} {steps} is over the limit of {settings.max_image_steps}", field=name)


def parse_request(kind: str, text: str | bytes, settings: Settings) -> Request:
    """Raw websocket message -> validated request, or RequestError with a readable reason."""
    if isinstance(text, bytes):
        raise RequestError("binary messages are not accepted: send the request as JSON text", Close.UNSUPPORTED_DATA)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > settings.max_message_bytes:
        raise RequestError(f"message is too big: {size} bytes, the limit is {settings.max_message_bytes}", Close.TOO_BIG)
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RequestError:
        raise
    except RecursionError:
        raise RequestError("message is not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, or an integer with too many digits
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "a number is too large"
        raise RequestError(f"message is not valid JSON: {reason}") from None
    if not isinstance(data, dict):
        raise RequestError(f"the request must be a JSON object, got {type(data).__name__}")
    model = REQUESTS[kind]
    # A field that is not the client's to set is refused as an unknown one, listed last as pydantic lists those.
    hidden = [name for name in data if name in model.model_fields and name not in client_fields(model)]
    unknown: list[Mapping[str, Any]] = [{"type": "extra_forbidden", "loc": (name,)} for name in hidden]
    try:
        request = model.model_validate({k: v for k, v in data.items() if k not in hidden}, strict=True)
    except ValidationError as error:
        raise RequestError(describe_validation_error([*error.errors(include_url=False), *unknown])) from None
    if unknown:
        raise RequestError(describe_validation_error(unknown))
    check_limits(kind, request, settings)
    return request


# ---------------------------------------------------------------------------------------------------------
# URL query <-> request (the page form round-trips through the URL)


def to_query(request: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in request.model_dump().items():
        if value is None:
            out[name] = "none"
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, float):
            out[name] = repr(value) if not value.is_integer() else f"{value:.1f}"
        else:
            out[name] = str(value)
    return out


def from_query(kind: str, query: Mapping[str, str], settings: Settings) -> tuple[Request, list[str]]:
    """Query string -> request. An invalid or over-limit value falls back to that field's default with a
    note shown on the page, never an error; the other fields keep their values."""
    model = REQUESTS[kind]
    values: dict[str, Any] = {}
    notes: list[str] = []
    fields = client_fields(model)
    for name, field in fields.items():
        if name not in query:
            continue
        raw = query[name]
        value: Any = raw
        if field.annotation == (int | None) and raw.strip().lower() in ("", "none", "null"):
            value = None
        try:
            model.model_validate({name: value})  # lax: "64" -> 64
        except ValidationError as error:
            notes.append(f"ignored {name}={raw[:40]!r}: {_describe(error.errors(include_url=False)[0])}")
            continue
        if isinstance(value, str) and field.annotation is float:
            number = float(value)
            if not math.isfinite(number):
                notes.append(f"ignored {name}={raw[:40]!r}: not a finite number")
                continue
        values[name] = value
    request = model.model_validate(values)
    for _ in range(len(fields)):  # each pass drops one offending field
        try:
            check_limits(kind, request, settings)
            break
        except RequestError as error:
            if error.field is None or error.field not in values:  # even the default is over a limit
                notes.append(f"{error.message}; change the server's limits or this setting")
                break
            default = model.model_fields[error.field].get_default()
            notes.append(f"ignored {error.field}={query[error.field][:40]!r}: {error.message}; using {default!r}")
            del values[error.field]
            request = model.model_validate(values)
    return request, notes


# ---------------------------------------------------------------------------------------------------------
# Outgoing messages that are not frames


def close_reason(text: str) -> str:
    """Close reasons must fit in 123 bytes of UTF-8."""
    data = text.encode("utf-8")
    if len(data) <= 123:
        return text
    return data[:120].decode("utf-8", "ignore") + "..."
