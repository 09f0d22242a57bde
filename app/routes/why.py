"""`/why`: "Why diffusion?", three claims, each backed by a live demo or our own measurements (app/why/page.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.routes.deps import BackendsDep
from app.web.templating import templates
from app.why import frontier_view
from app.why import page as why

router = APIRouter(tags=["pages"])


@router.get("/why", response_class=HTMLResponse)
async def why_page(request: Request, backends: BackendsDep) -> HTMLResponse:
    # Reads why.DATA_CSV / why.AR_LOG_CSV now (tests monkeypatch them); rebuilt only when a file changes.
    view = why.page_view(why.DATA_CSV, why.AR_LOG_CSV)
    measured = frontier_view.page_view(why.FRONTIER_CSV)  # read at request time too
    view = why.with_demos(view, list(measured.rows) if measured else None)
    context = {"embed": False, "kind": "why", "untrained": backends.untrained, "page": view, "frontier": measured}
    return templates.TemplateResponse(request, "why.html", context)
