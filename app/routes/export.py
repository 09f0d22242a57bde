"""Export and replay: `/export/<kind>.json` (the run's trace), `/export/<kind>.gif` (an animated GIF) and `/replay`.

    GET /export/text.json?<the page's query>            the trace (docs/trace-format.md)
    GET /export/race.gif?<the page's query>&speed=2      the GIF, frames timed as the player at that speed
    GET /replay                                          plays a trace opened from disk; computes nothing

Errors are plain text a person can read: 400 an invalid query value, 403 another site's page fetching an export,
404 an unknown export, 422 a request the model cannot serve, 503 busy / restarting / a fault (with Retry-After).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from app.demos.export_request import ExportError, check, check_site, collect, parse_speed, request_from_query, split_name
from app.demos.registry import DEMOS
from app.export.gif import render_gif
from app.export.trace import describe_models, filename, trace_json
from app.routes.deps import BackendsDep, EngineDep, SettingsDep
from app.web.templating import templates

router = APIRouter(tags=["export"])

T = TypeVar("T")
GIF_RENDERS_AT_ONCE = 2  # GIF drawing is CPU-bound (0.3-1 s a run): more requests wait their turn


class ClientLeft(Exception):
    """The HTTP client went away before its export was ready."""


async def _client_left(request: Request) -> None:
    """Returns when the client disconnects (after its request's end, `receive` waits for that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_client_leaves(request: Request, work: Awaitable[T]) -> T:
    """`work`, cancelled if the client leaves first (so a job nobody else watches stops within a step, as when
    the last websocket of a run closes)."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_client_left(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, watch):
            pending.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)
    if task.cancelled():
        raise ClientLeft
    return task.result()


def _gif_slots(request: Request) -> asyncio.Semaphore:
    slots = getattr(request.app.state, "export_gif_slots", None)
    if slots is None:  # one per app, made on its own loop
        slots = request.app.state.export_gif_slots = asyncio.Semaphore(GIF_RENDERS_AT_ONCE)
    return slots


@router.get("/export/{name:path}", name="export")
async def export(name: str, request: Request, settings: SettingsDep, backends: BackendsDep, engine: EngineDep) -> Response:
    query = dict(request.query_params)
    try:
        kind, extension = split_name(name)
        check_site(request.headers, settings)
        run_request = request_from_query(kind, query, settings)
        speed = parse_speed(query.get("speed")) if extension == "gif" else 1.0
        check(backends, run_request)
        messages = await unless_client_leaves(request, collect(engine, kind, backends, run_request))
        if extension == "json":
            models = describe_models(DEMOS[kind].models(backends), settings.checkpoint_dir)
            content = await asyncio.to_thread(lambda: trace_json(kind, run_request, models, messages).encode("utf-8"))
            media_type = "application/json"
        else:
            frames = [message.json for message in messages if message.type == "frame"]
            async with _gif_slots(request):  # the drawing runs to its end even if the client leaves: it is short
                content = await asyncio.to_thread(render_gif, DEMOS[kind].gif, frames, speed)
            media_type = "image/gif"
    except ExportError as error:
        return PlainTextResponse(error.message, status_code=error.status, headers=error.headers)
    except ClientLeft:
        return Response(status_code=204)  # nobody reads it
    disposition = f'attachment; filename="{filename(kind, run_request, extension)}"'
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


@router.get("/replay", response_class=HTMLResponse, name="replay")
async def replay(request: Request) -> HTMLResponse:
    """The replay page: a trace opened from disk plays in the same player; the server only serves static files."""
    titles = {kind: demo.page.title for kind, demo in DEMOS.items()}  # the demos a trace may come from
    context = {"kind": "replay", "embed": False, "untrained": [], "demo_titles": titles}
    return templates.TemplateResponse(request, "replay.html", context)
