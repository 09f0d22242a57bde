"""Named dependencies: routes reach settings, models and the engine through these, tests override them.

They are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread (anyio's pool of
up to 40), which under load would add threads and a thread hop to every websocket and page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.backends.interface import Backends
from app.engine.interface import Runs
from app.settings import Settings


async def get_app_settings(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings


async def get_backends(conn: HTTPConnection) -> Backends:
    return conn.app.state.backends


async def get_engine(conn: HTTPConnection) -> Runs:
    return conn.app.state.engine


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
BackendsDep = Annotated[Backends, Depends(get_backends)]
EngineDep = Annotated[Runs, Depends(get_engine)]  # in process, or on Redis (THEATER_REDIS_URL)
