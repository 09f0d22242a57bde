"""A request as a page's query string (every setting lives in the URL, so a link reproduces a run)."""

from __future__ import annotations

from pydantic import BaseModel


def to_query(request: BaseModel) -> dict[str, str]:
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
