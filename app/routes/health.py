"""Liveness and readiness: `/healthz` answers while the process runs; `/readyz` once models are loaded
and until shutdown begins (load balancers stop sending new sessions then)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.metrics import rss_bytes, thread_count

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


@router.get("/stats")
async def stats(request: Request) -> JSONResponse:
    """Numbers for the benchmarks: engine counters, event-loop lag, threads, memory. `?reset=1` clears the
    lag samples (so a benchmark measures only its own window)."""
    state = request.app.state
    engine = getattr(state, "engine", None)
    lag = getattr(state, "loop_lag", None)
    body: dict[str, object] = {"threads": thread_count(), "rss_bytes": rss_bytes()}
    if lag is not None:
        body["loop_lag"] = lag.summary()
        if request.query_params.get("reset") == "1":
            lag.reset()
    if engine is not None:
        body["engine"] = {
            "jobs_started": engine.jobs_started,
            "cache_hits": engine.cache_hits,
            "joined_inflight": engine.joined_inflight,
            "running": engine.running,
            "queued": engine.queued,
            "cached": engine.cached,
            "cached_bytes": engine.cached_bytes,
        }
    return JSONResponse(body)
