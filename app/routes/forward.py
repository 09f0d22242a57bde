"""`/image/forward`: the forward process q(x_t | x_0) on a real held-out digit, one timestep at a time.

The page holds a digit index (0..9999, the committed MNIST t10k set) and a slider over t = 0..999; the slider
asks `/image/forward/frame` for the figure (x_t, x_0, the schedule plot at t, the noise level) and htmx swaps it
in. The response's `HX-Replace-Url` keeps the page's URL (`?index=…&t=…`) in step, so a link reproduces the view.

x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, with the loaded DDPM's schedule and eps seeded by the
index alone (`models.image.forward`): the same noise at every t, so dragging is smooth and (index, t) is always the
same picture. t = 0 is x_0 itself. Numpy only: no torch on this path.

"Denoise from here" is a form to `/image?source=…&start_t=…`: the image page then runs the chosen sampler from that
very picture. Its two hidden fields follow the slider: each figure fragment carries them out of band.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import escape

from app.demos.registry import IMAGE_OPTIONS
from app.render.image import png_base64, schedule_plot
from app.routes.deps import BackendsDep, SettingsDep
from app.web.templating import stream_macros, templates
from models.image.data import HELD_OUT_DIGITS, held_out_split
from models.image.forward import noised

router = APIRouter(tags=["pages"])

DIGITS = HELD_OUT_DIGITS
TIMESTEPS = 1000
DEFAULT_INDEX, DEFAULT_T = 0, 500


class ForwardError(ValueError):
    """A query the page cannot show; its message is what the reader sees (422)."""


@dataclass(frozen=True)
class ForwardQuery:
    index: int
    t: int


def number_in_range(query: dict[str, str], name: str, default: int, limit: int) -> int:
    raw = query.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ForwardError(f"{name} must be a whole number between 0 and {limit - 1}") from None
    if not 0 <= value < limit:
        raise ForwardError(f"{name} must be between 0 and {limit - 1} (got {value})")
    return value


def parse_query(query: dict[str, str]) -> ForwardQuery:
    return ForwardQuery(number_in_range(query, "index", DEFAULT_INDEX, DIGITS), number_in_range(query, "t", DEFAULT_T, TIMESTEPS))


def page_url(query: ForwardQuery) -> str:
    return f"/image/forward?{urlencode({'index': query.index, 't': query.t})}"


def figure_view(query: ForwardQuery, schedule: np.ndarray) -> SimpleNamespace:
    x0 = held_out_split()[0][query.index]
    xt, level = noised(x0, schedule, query.t, query.index)
    return SimpleNamespace(
        index=query.index,
        t=query.t,
        xt_png=png_base64(xt),
        x0_png=png_base64(x0),
        noise_level=f"{level:.3f}",
        signal_level=f"{np.sqrt(1 - level * level):.3f}",
        plot=schedule_plot(schedule, query.t, level),
        next_url=page_url(ForwardQuery((query.index + 1) % DIGITS, query.t)),
    )


def _error(message: str) -> HTMLResponse:
    return HTMLResponse(f'<p class="note forward-error" role="alert">{escape(message)}</p>', status_code=422)


@router.get("/image/forward/frame", response_class=HTMLResponse)
def forward_frame(request: Request, backends: BackendsDep) -> HTMLResponse:
    """The figure alone (a fragment): the slider's htmx request swaps it in."""
    try:
        query = parse_query(dict(request.query_params))
    except ForwardError as error:
        return _error(str(error))
    macros = stream_macros()
    view = figure_view(query, backends.image.noise_schedule())
    html = macros.forward_figure(view) + macros.denoise_fields(view, oob=True)  # the denoise form follows the slider
    return HTMLResponse(html, headers={"HX-Replace-Url": page_url(query)})


@router.get("/image/forward", response_class=HTMLResponse)
def forward_page(request: Request, backends: BackendsDep, settings: SettingsDep) -> HTMLResponse:
    status, notes = 200, []
    try:
        query = parse_query(dict(request.query_params))
    except ForwardError as error:
        status, notes, query = 422, [str(error)], ForwardQuery(DEFAULT_INDEX, DEFAULT_T)
    context: dict[str, Any] = {
        "embed": False,
        "kind": "image-forward",
        "untrained": backends.untrained,
        "notes": notes,
        "query": query,
        "digits": DIGITS,
        "timesteps": TIMESTEPS,
        "figure": figure_view(query, backends.image.noise_schedule()),
        "samplers": IMAGE_OPTIONS["sampler"],
        "digit_options": IMAGE_OPTIONS["digit"],
        "max_steps": settings.max_image_steps,
    }
    return templates.TemplateResponse(request, "forward.html", context, status_code=status)
