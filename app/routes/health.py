"""Liveness and readiness: `/healthz` answers while the process runs; `/readyz` once models are loaded
and until shutdown begins (the first SIGTERM sets `app.state.draining`; load balancers stop sending new
sessions then). With the Redis engine, `/readyz` is 503 too while Redis cannot be reached. `/stats` numbers
for the benchmarks."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.engine.redis_replica import RedisEngine
from app.web.metrics import rss_bytes, thread_count

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    backends = getattr(state, "backends", None)
    engine = getattr(state, "engine", None)
    if getattr(state, "draining", False) or (engine is not None and engine.closing):
        return JSONResponse({"status": "draining"}, status_code=503)
    if backends is None or engine is None:
        return JSONResponse({"status": "not ready"}, status_code=503)
    queue: dict[str, object] = {}
    if isinstance(engine, RedisEngine):  # runs are queued and computed elsewhere: without Redis, nothing is served
        if not await engine.reachable():
            return JSONResponse({"status": "run queue unreachable"}, status_code=503)
        queue = {"workers": engine.workers}  # ready without workers: pages still serve, runs say "no workers"
    return JSONResponse(
        {
            "status": "ready",
            "models": {"text": backends.text.name, "image": backends.image.name, "race": backends.race.name},
            "untrained": backends.untrained,
            "problems": backends.problems,  # why a checkpoint did not load (e.g. a sha256 mismatch)
            "running": engine.running,
            "queued": engine.queued,
            "cached": engine.cached,
            **queue,
        }
    )


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.get("/stats")
async def stats(request: Request) -> JSONResponse:
    """Numbers for the benchmarks: engine counters, event-loop lag, threads, memory. `?reset=1` clears the
    lag samples (so a benchmark measures only its own window); only a loopback client may ask for that,
    unless THEATER_STATS_RESET_FROM_ANYWHERE is set, so a visitor cannot wipe a running benchmark's samples."""
    state = request.app.state
    engine = getattr(state, "engine", None)
    lag = getattr(state, "loop_lag", None)
    reset = request.query_params.get("reset") == "1"
    if reset and not (state.settings.stats_reset_from_anywhere or is_loopback(request.client and request.client.host)):
        return JSONResponse({"error": "reset=1 is only allowed from this machine (loopback)"}, status_code=403)
    body: dict[str, object] = {"threads": thread_count(), "rss_bytes": rss_bytes()}
    if lag is not None:
        body["loop_lag"] = lag.summary()
        if reset:
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
