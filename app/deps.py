"""Named dependencies: routes reach settings, models and the engine through these, tests override them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.backends import Backends
from app.engine import Engine
from app.settings import Settings


def get_app_settings(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings


def get_backends(conn: HTTPConnection) -> Backends:
    return conn.app.state.backends


def get_engine(conn: HTTPConnection) -> Engine:
    return conn.app.state.engine


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
BackendsDep = Annotated[Backends, Depends(get_backends)]
EngineDep = Annotated[Engine, Depends(get_engine)]
