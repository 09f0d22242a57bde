"""HTML pages and the run fragment. Every setting lives in the query string, so a link reproduces a run.

Each demo of the registry (`app.demos.registry`) has one route triple made by `_add_demo`: `/<kind>` and
`/embed/<kind>` render its template (embed: minimal chrome); `/<kind>/run` renders only the `run` block (a template
fragment), which the controls form swaps in with htmx to start a run.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.backends.interface import NO_IMAGE_RACE, Backends
from app.demos.page_parts import DEFAULTS
from app.demos.protocol import from_query
from app.demos.registry import DEMOS, Demo
from app.routes.deps import BackendsDep, SettingsDep
from app.settings import Settings
from app.web.query import to_query
from app.web.templating import render_block, templates

router = APIRouter(tags=["pages"])


def page_context(request: Request, kind: str, embed: bool, settings: Settings, backends: Backends) -> dict[str, Any]:
    demo = DEMOS[kind]
    query = dict(request.query_params)
    run_request, notes = from_query(kind, query, settings)
    autoplay = query.get("autoplay") == "1"
    backend = demo.backend(backends)
    if backend is None:
        notes = [*notes, NO_IMAGE_RACE]
    params = to_query(run_request)
    return {
        **DEFAULTS,
        **demo.parts(run_request, backends),
        "kind": kind,
        "page": demo.page,
        "placeholder": demo.page.placeholder,
        "embed": embed,
        "autoplay": autoplay,
        "req": run_request,
        "params": params,
        "query": urlencode(params),
        "request_json": json.dumps(run_request.model_dump(mode="json"), separators=(",", ":")),
        "notes": notes,
        "settings": settings,
        "options": demo.options,
        "model_name": backend.name if backend is not None else "none loaded",
        "model_trained": backend.trained if backend is not None else False,
        "model_description": getattr(backend, "description", ""),
        "untrained": backends.untrained,
        "active": autoplay,
        "page_path": f"/embed/{kind}" if embed else f"/{kind}",
    }


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, backends: BackendsDep) -> HTMLResponse:
    context = {"untrained": backends.untrained, "embed": False, "kind": "index", "backends": backends}
    return templates.TemplateResponse(request, "index.html", context)


def _add_demo(demo: Demo) -> None:
    """`/<kind>`, `/embed/<kind>` and `/<kind>/run`; the kind is a path (`race/image`), route names use `_`."""
    kind, template, name = demo.kind, demo.page.template, demo.route_name

    def page_handler(embed: bool) -> Any:
        async def page(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
            context = page_context(request, kind, embed, settings, backends)
            return templates.TemplateResponse(request, template, context)

        return page

    async def run(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
        """The `run` block alone, active: swapping it in opens the websocket and sends the request."""
        context = page_context(request, kind, False, settings, backends)
        context["active"] = True
        return HTMLResponse(render_block("demo.html", "run", context))

    router.add_api_route(f"/{kind}", page_handler(False), response_class=HTMLResponse, name=f"{name}_page")
    router.add_api_route(f"/embed/{kind}", page_handler(True), response_class=HTMLResponse, name=f"{name}_embed")
    router.add_api_route(f"/{kind}/run", run, response_class=HTMLResponse, name=f"{name}_run")


for _demo in DEMOS.values():
    _add_demo(_demo)
