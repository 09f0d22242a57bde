"""The measurement files the pages cite, served as they are so a reader can open the numbers behind a plot.

Only the files named here are served (`/data/<name>`), from the repository's docs folder: the pages read the
same files at request time, so the link always gives what the page drew.
"""

from __future__ import annotations

from pathlib import Path

from app.settings import REPO_ROOT

DATA_ROOT = REPO_ROOT / "docs"
DATA_FILES = (
    "text-frontier.csv",
    "data-efficiency.csv",
    "image-race-recovery.json",
    "rework-eval.json",
    "live-train-10k.json",
)


def data_url(path: Path) -> str | None:
    """The link to a cited file, or None when it is not one the server offers (another path, or missing)."""
    served = data_path(path.name)
    return f"/data/{path.name}" if served is not None and served.resolve() == path.resolve() else None


def data_path(name: str) -> Path | None:
    return DATA_ROOT / name if name in DATA_FILES and (DATA_ROOT / name).is_file() else None
