"""Liveness and readiness: `/healthz` answers while the process runs; `/readyz` once models are loaded
and until shutdown begins (load balancers stop sending new sessions then)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    backends = getattr(state, "backends", None)
    engine = getattr(state, "engine", None)
    if backends is None or engine is None or engine.closing:
        return JSONResponse({"status": "not ready"}, status_code=503)
    return JSONResponse(
        {
            "status": "ready",
            "models": {"text": backends.text.name, "image": backends.image.name},
            "untrained": backends.untrained,
            "running": engine.running,
            "queued": engine.queued,
            "cached": engine.cached,
        }
    )
