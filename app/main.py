"""Assembles the app: settings, lifespan (load the models once, off the event loop), routers, static files.

Serve it with `python -m app` (`app/__main__.py`): that entry point sets what uvicorn's defaults do not
(websocket implementation, message size cap, no per-message deflate, bounded graceful shutdown, the
draining flag for `/readyz`). `app` below exists for tests and tools that import it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from app.backends.interface import Backends
from app.backends.load import load_backends
from app.demos.prewarm import prewarm
from app.demos.registry import producer_factory
from app.engine.interface import Runs
from app.engine.local import Engine
from app.engine.redis_replica import RedisEngine
from app.routes import data, export, forward, health, inpaint, pages, stream, tokens, why
from app.settings import Settings, get_settings
from app.web.metrics import LoopLag
from app.web.security import SecurityHeaders
from app.web.static_files import STATIC_ROOT, VersionedStaticFiles

log = logging.getLogger("theater")

Loader = Callable[[Settings], Backends]


async def make_engine(settings: Settings, backends: Backends, use_torch: bool = True) -> Runs:
    """In process (the default), or on Redis when THEATER_REDIS_URL is set: then workers (`python -m app.worker`)
    sample and this process only streams (the backends above still load: request checks and pages use them).
    Redis need not be up yet: /readyz says 503 until it is."""
    if settings.redis_url:
        engine = RedisEngine.from_settings(settings)
        await engine.start()
        return engine
    return Engine(
        max_running=settings.max_running,
        max_queue=settings.max_queue,
        max_wait_seconds=settings.max_wait_seconds,
        cache_bytes=settings.cache_bytes,
        torch_threads=settings.effective_torch_threads,
        use_torch=use_torch,
        producers=producer_factory(backends),
    )


def create_app(settings: Settings | None = None, loader: Loader = load_backends, use_torch: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backends = await asyncio.to_thread(loader, settings)
        if app.state.backends.untrained:
            log.warning("UNTRAINED models in use: %s", ", ".join(app.state.backends.untrained))
        app.state.engine = await make_engine(settings, app.state.backends, use_torch)
        app.state.loop_lag = LoopLag()
        app.state.loop_lag.start()
        # In the background: readiness does not wait for it (a visitor's run joins a prewarm job in flight).
        app.state.prewarm = asyncio.create_task(prewarm(app.state.engine, app.state.backends)) if settings.prewarm else None
        try:
            yield
        finally:
            if app.state.prewarm is not None:
                app.state.prewarm.cancel()
            await app.state.engine.close()
            await app.state.loop_lag.stop()

    app = FastAPI(title="Diffusion Theater", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.backends = None
    app.state.engine = None
    app.state.draining = False  # set at the first SIGTERM by app.__main__.TheaterServer: /readyz -> 503
    app.state.clients = stream.ClientCounter()
    app.add_middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors)
    # Pages, CSS and JS compress 4-8x; websockets and small responses pass through untouched.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(forward.router)
    app.include_router(inpaint.router)
    app.include_router(stream.router)
    app.include_router(why.router)
    app.include_router(export.router)
    app.include_router(tokens.router)
    app.include_router(data.router)
    app.mount("/static", VersionedStaticFiles(directory=STATIC_ROOT), name="static")
    return app


app = create_app()
