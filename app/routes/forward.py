"""`/image/forward`: the forward process q(x_t | x_0) on a real held-out digit, one timestep at a time.

The page holds a digit index (0..9999, the committed MNIST t10k set) and a slider over t = 0..999; the slider
asks `/image/forward/frame` for the figure (x_t, x_0, the schedule plot at t, the noise level) and htmx swaps it
in. The response's `HX-Replace-Url` keeps the page's URL (`?index=…&t=…`) in step, so a link reproduces the view.

x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, with the loaded DDPM's schedule and eps seeded by the
index alone: the same noise at every t, so dragging is smooth and (index, t) is always the same picture. t = 0
is x_0 itself, as `models.image.sample` treats it. Numpy only: no torch on this path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import escape

from app.deps import BackendsDep
from app.render.image import png_base64, schedule_plot
from app.templating import stream_macros, templates
from models.image.data import EVALUATION_MNIST, read_idx, to_uint8

router = APIRouter(tags=["pages"])

DIGITS_FILE = EVALUATION_MNIST / "t10k-images-idx3-ubyte.gz"
DIGITS = 10_000
TIMESTEPS = 1000
DEFAULT_INDEX, DEFAULT_T = 0, 500


@cache
def held_out_digits() -> np.ndarray:
    """The 10,000 held-out digits, uint8 (10000, 28, 28), read once."""
    images = read_idx(DIGITS_FILE)
    if images.shape != (DIGITS, 28, 28):
        raise ValueError(f"{DIGITS_FILE} holds {images.shape}, not {DIGITS} 28x28 digits")
    return images


class ForwardError(ValueError):
    """A query the page cannot show; its message is what the reader sees (422)."""


@dataclass(frozen=True)
class ForwardQuery:
    index: int
    t: int


def _number(query: dict[str, str], name: str, default: int, limit: int) -> int:
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
    return ForwardQuery(_number(query, "index", DEFAULT_INDEX, DIGITS), _number(query, "t", DEFAULT_T, TIMESTEPS))


def noised(image: np.ndarray, schedule: np.ndarray, t: int, seed: int) -> tuple[np.ndarray, float]:
    """uint8 (28, 28) x_0 -> (uint8 x_t, sqrt(1 - alpha_bar_t)); `schedule` is sqrt(1 - alpha_bar) by t."""
    if t == 0:
        return image, 0.0
    level = float(schedule[t])
    x0 = image.astype(np.float64) / 127.5 - 1
    eps = np.random.default_rng(seed).standard_normal(image.shape)
    return to_uint8(np.sqrt(1 - level * level) * x0 + level * eps), level


def page_url(query: ForwardQuery) -> str:
    return f"/image/forward?{urlencode({'index': query.index, 't': query.t})}"


def figure_view(query: ForwardQuery, schedule: np.ndarray) -> SimpleNamespace:
    x0 = held_out_digits()[query.index]
    xt, level = noised(x0, schedule, query.t, seed=query.index)
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
    html = stream_macros().forward_figure(figure_view(query, backends.image.noise_schedule()))
    return HTMLResponse(html, headers={"HX-Replace-Url": page_url(query)})


@router.get("/image/forward", response_class=HTMLResponse)
def forward_page(request: Request, backends: BackendsDep) -> HTMLResponse:
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
    }
    return templates.TemplateResponse(request, "forward.html", context, status_code=status)
