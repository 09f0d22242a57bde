"""`/data/<name>`: the measurement files the pages cite (app/why/data_files.py), as plain downloads."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from app.why.data_files import DATA_FILES, data_path

router = APIRouter(tags=["data"])
MEDIA_TYPES = {".csv": "text/csv; charset=utf-8", ".json": "application/json"}


@router.get("/data/{name}")
async def data_file(name: str) -> FileResponse:
    path = data_path(name)
    if path is None:
        raise HTTPException(404, f"no such data file: the server offers {', '.join(DATA_FILES)}")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], filename=name)
