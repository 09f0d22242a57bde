"""The websocket protocol: request parsing with human-readable reasons, and the page query strings.

A client opens `/ws/<kind>` (a demo's kind in the registry, `app.demos.registry`: `/ws/text`, `/ws/image`,
`/ws/race`, `/ws/race/image`, `/ws/image/grid`, `/ws/image/samplers`), sends ONE JSON request (that demo's request
object), and receives `queued`* `frame`+ `done` (or one `error`) messages. See docs/protocol.md.
The same schemas parse the page query strings, so a URL and a websocket request describe one run.

The request types are the samplers' own (`models.text.decoding`, `models.image.request`: torch-free), so a
validated request goes to a sampler as it is; what only the web layer limits (`Settings`) is each demo's check
(`app.demos.limits`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from app.demos.registry import demo
from app.errors import Close, RequestError
from app.settings import Settings
from models.text.decoding import EDIT_FIELDS
from models.text.live_request import TEXT_FIELDS

Request = BaseModel  # a demo's request: its registry entry says which type


@dataclass(frozen=True)
class FieldGroup:
    """Query fields that are one thing on a page: when one of them is refused, all go, with one note."""

    name: str
    fields: tuple[str, ...]
    fallback: str


FIELD_GROUPS = (
    FieldGroup("the edit", EDIT_FIELDS, "showing the run without it"),  # a bad edit leaves the run it starts from
    FieldGroup("the text", TEXT_FIELDS, "training on the default preset instead"),  # /train's own text
)


def client_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The fields a client may send: all but those the samplers keep for their other callers (`exclude`d from
    dumps and the JSON schema, as the image request's `batch`: the web always samples one image)."""
    return {name: field for name, field in model.model_fields.items() if not field.exclude}


# ---------------------------------------------------------------------------------------------------------
# Validation


def _reject_constant(name: str) -> Any:
    raise RequestError(f"{name} is not a valid number: JSON numbers must be finite")


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
    """The demo's own limits from settings (`app.demos.limits`): RequestError naming the field."""
    demo(kind).check(request, settings)


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
    model = demo(kind).request
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


def from_query(kind: str, query: Mapping[str, str], settings: Settings) -> tuple[Request, list[str]]:
    """Query string -> request. An invalid or over-limit value falls back to that field's default with a
    note shown on the page, never an error; the other fields keep their values."""
    model = demo(kind).request
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
            group = next((g for g in FIELD_GROUPS if error.field in g.fields and any(n in values for n in g.fields)), None)
            if group is not None:  # fields that are one thing: a bad one drops them all
                notes.append(f"ignored {group.name}: {error.message}; {group.fallback}")
                for name in group.fields:
                    values.pop(name, None)
                request = model.model_validate(values)
                continue
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
