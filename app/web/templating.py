"""The Jinja environment, in one place: pages render templates (whole, or one block as a fragment), the
websockets render the macros of templates/stream.html."""

from __future__ import annotations

from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request

from app.settings import REPO_ROOT
from app.web.playback import BASE_FPS, SPEEDS
from app.web.static_files import static_url
from models.image.request import GUIDANCE_MAX
from models.requests import SEED_MAX
from models.text.decoding import TEMPERATURE_MAX

THEMES = ("auto", "dark", "projector")  # auto: the reader's prefers-color-scheme decides


def presentation(request: Request) -> dict[str, object]:
    """What every page takes from its URL besides the run: the theme (`?theme=projector`; anything else is
    `auto`) and, for embeds, whether to show the finished run's maps below it (`?result=1`)."""
    theme = request.query_params.get("theme", "auto")
    return {"theme": theme if theme in THEMES else "auto", "show_result": request.query_params.get("result") == "1"}


templates = Jinja2Templates(directory=REPO_ROOT / "templates", context_processors=[presentation])
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
templates.env.globals["static_url"] = static_url  # content-versioned links (app/web/static_files.py)
# Limits and constants the templates print come from the Python that enforces them: one source each.
templates.env.globals["limits"] = {
    "seed_max": SEED_MAX,
    "guidance_max": f"{GUIDANCE_MAX:g}",
    "temperature_max": f"{TEMPERATURE_MAX:g}",
}
templates.env.globals["playback"] = {"base_fps": BASE_FPS, "speeds": SPEEDS}


def stream_macros() -> Any:
    """The fragments the websockets send live as macros in templates/stream.html (one file, one job)."""
    return templates.env.get_template("stream.html").module


def render_block(name: str, block: str, context: dict[str, Any]) -> str:
    """Render one block of a page template: the template-fragment pattern."""
    template = templates.env.get_template(name)
    return "".join(template.blocks[block](template.new_context(context)))
