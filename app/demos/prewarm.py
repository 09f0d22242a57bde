"""First play is instant: at startup, each demo's default run is computed in the background into the replay
cache, so the first visitor's Generate replays it at once. A demo with a committed recording of its default run
(`/train`: 90 s of training) caches the recording instead, on the in-process engine. Readiness does not wait for
it, and a run a visitor asks for meanwhile simply joins the job in flight."""

from __future__ import annotations

import asyncio
import logging

from app.backends.interface import Backends
from app.demos.registry import DEMOS
from app.engine.interface import Busy, Failed, Runs, ShuttingDown, Unavailable, run_key
from app.errors import RequestError
from app.render.message import Rendered

log = logging.getLogger("theater.prewarm")

# The defaults each page's Generate sends (no query string), for the demos whose registry entry asks for it.
# Recorded runs first: caching one costs a fraction of a second, and a visitor who asks for it before it is cached
# would join a live run instead (90 s of training for /train's default).
PREWARMED = tuple(sorted((kind for kind, entry in DEMOS.items() if entry.prewarm), key=lambda kind: DEMOS[kind].recorded is None))
RETRIES = 30  # with the Redis engine: try for about RETRIES x RETRY_SECONDS while no worker is up
RETRY_SECONDS = 2.0


async def prewarm(engine: Runs, backends: Backends, kinds: tuple[str, ...] = PREWARMED) -> int:
    """Run each default request through the engine, one after another (so visitors keep a free slot);
    returns how many finished into the cache."""
    cached = 0
    for kind in kinds:
        for _attempt in range(RETRIES):
            outcome = await _prewarm_one(engine, backends, kind)
            if outcome != "retry":
                break
            await asyncio.sleep(RETRY_SECONDS)
        cached += outcome == "done"
    log.info("prewarmed %d default runs into the replay cache", cached)
    return cached


async def _prewarm_one(engine: Runs, backends: Backends, kind: str) -> str:
    """ "done", "retry" (the Redis engine: no worker yet, or Redis not up yet), or "skipped"."""
    entry = DEMOS[kind]
    request = entry.request()
    try:
        backends.check(request)
        recorded = entry.recorded(backends, request) if entry.recorded is not None else None
        join = getattr(engine, "join", None)  # the in-process engine caches a given producer's run under the key
        if recorded is not None and join is not None:
            subscription = join(run_key(kind, request), recorded)
        else:
            subscription = engine.run(kind, request, html=True)
    except (Busy, ShuttingDown, RequestError) as error:
        log.info("prewarm of the default %s run skipped: %s", kind, type(error).__name__)
        return "skipped"
    done = False
    with subscription:  # read to the end: leaving at `done` would stop the job before it is cached
        async for event in subscription.events():
            if isinstance(event, Unavailable):  # replicas may start before the workers or Redis: try again shortly
                log.info("prewarm of the default %s run waits: %s", kind, event.message)
                return "retry"
            if isinstance(event, Failed):
                log.warning("prewarm of the default %s run failed: %s", kind, event.message)
                return "skipped"
            done = isinstance(event, Rendered) and event.type == "done"
    return "done" if done else "skipped"
