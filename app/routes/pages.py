"""HTML pages and the run fragment. Every setting lives in the query string, so a link reproduces a run.

`/text` and `/embed/text` render the same template (embed: minimal chrome); `/text/run` renders only the
page's `run` block (a template fragment), which the controls form swaps in with htmx to start a run.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.backends import Backends
from app.deps import BackendsDep, SettingsDep
from app.protocol import ImageRequest, TextRequest, from_query, to_query
from app.render import templates
from app.settings import Settings

router = APIRouter(tags=["pages"])

TEXT_OPTIONS = {
    "strategy": [
        # The trade-off each order makes, as measured by `evaluate --sweep` (see the text-diffusion card).
        ("confidence", "most confident first (LLaDA): fluent, repetitive"),
        ("random", "random order (MDLM): true samples, varied"),
        ("margin", "top-2 margin: varied"),
        ("entropy", "lowest entropy: varied"),
    ],
    "remask": [
        ("none", "no remasking"),
        ("cap", "ReMDM cap"),
        ("conf", "ReMDM confidence"),
        ("loop", "ReMDM loop"),
    ],
}
IMAGE_OPTIONS = {
    "sampler": [("ddim", "DDIM"), ("ddpm", "DDPM"), ("dpm", "DPM-Solver++")],
    "digit": [("none", "none (unconditional)")] + [(str(d), str(d)) for d in range(10)],
}


# Diffusion steps the race page offers (a link may carry any other valid value; it is added to the menu).
RACE_STEPS = (8, 16, 32, 64)

# Starting points for the race, as links (every setting lives in the URL): the second shows what the
# autoregressive lane cannot do, fill a gap using the text on its right.
RACE_PRESETS = [
    ("Continue a story", {"prompt": "Once upon a time", "length": "64", "steps": "16"}),
    ("Fill a gap", {"prompt": "Tom had a red ball. ___ He was sad.", "length": "16", "steps": "8"}),
]


def render_block(name: str, block: str, context: dict[str, Any]) -> str:
    """Render one block of a page template: the template-fragment pattern."""
    template = templates.env.get_template(name)
    return "".join(template.blocks[block](template.new_context(context)))


def page_context(
    request: Request, kind: str, embed: bool, settings: Settings, backends: Backends
) -> dict[str, Any]:
    query = dict(request.query_params)
    run_request, notes = from_query(kind, query, settings)
    assert isinstance(run_request, TextRequest | ImageRequest)  # RaceRequest is a TextRequest
    autoplay = query.get("autoplay") == "1"
    backend = {"text": backends.text, "image": backends.image, "race": backends.race}[kind]
    params = to_query(run_request)
    return {
        "kind": kind,
        "embed": embed,
        "autoplay": autoplay,
        "req": run_request,
        "params": params,
        "query": urlencode(params),
        "request_json": json.dumps(run_request.model_dump(mode="json"), separators=(",", ":")),
        "notes": notes,
        "settings": settings,
        "options": IMAGE_OPTIONS if kind == "image" else TEXT_OPTIONS,
        "model_name": backend.name,
        "model_trained": backend.trained,
        "model_description": getattr(backend, "description", ""),
        "race_facts": backends.race.facts,
        "step_choices": sorted({*RACE_STEPS, run_request.steps}) if kind == "race" else [],
        "presets": [(label, urlencode(values)) for label, values in RACE_PRESETS] if kind == "race" else [],
        "untrained": backends.untrained,
        "active": autoplay,
        "page_path": f"/embed/{kind}" if embed else f"/{kind}",
    }


def _page(request: Request, kind: str, embed: bool, settings: Settings, backends: Backends) -> HTMLResponse:
    context = page_context(request, kind, embed, settings, backends)
    return templates.TemplateResponse(request, f"{kind}.html", context)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
    context = {"untrained": backends.untrained, "embed": False, "kind": "index", "backends": backends}
    return templates.TemplateResponse(request, "index.html", context)


@router.get("/text", response_class=HTMLResponse)
async def text_page(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
    return _page(request, "text", False, settings, backends)


@router.get("/image", response_class=HTMLResponse)
async def image_page(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
    return _page(request, "image", False, settings, backends)


@router.get("/embed/text", response_class=HTMLResponse)
async def embed_text(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
    return _page(request, "text", True, settings, backends)


@router.get("/embed/image", response_class=HTMLResponse)
async def embed_image(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
    return _page(request, "image", True, settings, backends)


@router.get("/race", response_class=HTMLResponse)
async def race_page(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
    return _page(request, "race", False, settings, backends)


@router.get("/embed/race", response_class=HTMLResponse)
async def embed_race(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
    return _page(request, "race", True, settings, backends)


@router.get("/{kind}/run", response_class=HTMLResponse)
async def run_fragment(kind: str, request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
    """The `run` block alone, active: swapping it in opens the websocket and sends the request."""
    if kind not in ("text", "image", "race"):
        return HTMLResponse("not found", status_code=404)
    context = page_context(request, kind, False, settings, backends)
    context["active"] = True
    return HTMLResponse(render_block(f"{kind}.html", "run", context))
