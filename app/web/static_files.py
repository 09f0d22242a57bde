"""Static files served like a real site: content-versioned URLs cached for a year, everything else revalidated.

Templates link `static_url("theater.css")`, i.e. `/static/theater.css?v=<content hash>`: when a file changes its
URL changes, so a browser may keep a versioned response forever (`immutable`). A request without the current
version (an old page, a hand-typed URL) gets `no-cache`: the browser revalidates with the ETag each time.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.settings import REPO_ROOT

STATIC_ROOT = REPO_ROOT / "static"
VERSIONED = "public, max-age=31536000, immutable"
UNVERSIONED = "no-cache"


@lru_cache(maxsize=256)
def file_version(path: str) -> str:
    """The first 12 hex digits of the file's sha256 (files are read once per process: a deploy restarts it)."""
    return hashlib.sha256((STATIC_ROOT / path).read_bytes()).hexdigest()[:12]


def static_url(path: str) -> str:
    return f"/static/{path}?v={file_version(path)}"


class VersionedStaticFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            query = scope.get("query_string", b"").decode("latin-1")
            versioned = False
            if query.startswith("v="):
                try:
                    versioned = query[2:] == file_version(path)
                except OSError:
                    versioned = False
            response.headers["cache-control"] = VERSIONED if versioned else UNVERSIONED
        return response
