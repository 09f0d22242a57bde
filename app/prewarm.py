"""First play is instant: at startup, each demo's default run is computed in the background into the replay
cache, so the first visitor's Generate replays it at once. Readiness does not wait for it, and a run a visitor
asks for meanwhile simply joins the job in flight."""

from __future__ import annotations

import logging

from app.backends import Backends
from app.engine import Busy, Engine, Failed, ShuttingDown
from app.protocol import REQUESTS, RequestError, canonical_key
from app.render.producers import make_producer

log = logging.getLogger("theater.prewarm")

DEMOS = ("text", "image", "race")  # the defaults each page's Generate sends (no query string)


async def prewarm(engine: Engine, backends: Backends, kinds: tuple[str, ...] = DEMOS) -> int:
    """Run each default request through the engine, one after another (so visitors keep a free slot);
    returns how many finished into the cache."""
    cached = 0
    for kind in kinds:
        request = REQUESTS[kind]()
        try:
            backends.check(request)
            subscription = engine.join(canonical_key(kind, request), make_producer(kind, backends, request), html=True)
        except (Busy, ShuttingDown, RequestError) as error:
            log.info("prewarm of the default %s run skipped: %s", kind, type(error).__name__)
            continue
        with subscription:
            async for event in subscription.events():
                if isinstance(event, Failed):
                    log.warning("prewarm of the default %s run failed: %s", kind, event.message)
                    break
            else:
                cached += subscription.job.state == "done"
    log.info("prewarmed %d default runs into the replay cache", cached)
    return cached
