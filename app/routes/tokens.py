"""`GET /text/tokens?text=...`: how many tokens a piece of text takes on the text demo's canvas, for the infill
editor (a selection turned into a gap gets as many blanks as the words it replaces had tokens).

It counts as the sampler counts a piece of fixed text (`models.text.sample.count_tokens`, through the loaded
backend's `count_tokens`: the real tokenizer, or the fakes' word count), so the editor and the context check agree.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.routes.deps import BackendsDep, SettingsDep

router = APIRouter(tags=["text"])


@router.get("/text/tokens")
async def text_tokens(text: str, settings: SettingsDep, backends: BackendsDep) -> JSONResponse:
    # The bound a prompt has: nothing longer can be a piece of a template (a few microseconds to tokenise).
    if len(text) > settings.max_prompt_chars:
        message = f"text is too long: {len(text)} characters, the limit is {settings.max_prompt_chars}"
        return JSONResponse({"error": message}, status_code=422)
    count_tokens = getattr(backends.text, "count_tokens", None)
    if not callable(count_tokens):
        return JSONResponse({"error": "the loaded text model does not count tokens"}, status_code=501)
    return JSONResponse({"tokens": int(count_tokens(text))})
