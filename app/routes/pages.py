"""HTML pages and the run fragment. Every setting lives in the query string, so a link reproduces a run.

Each demo (text, image, race, race/image, image/grid, image/samplers) has one route pair made by `_add_demo`:
`/<kind>` and `/embed/<kind>` render the same template (embed: minimal chrome); `/<kind>/run` renders only the
`run` block (a template fragment), which the controls form swaps in with htmx to start a run. A demo's kind is its
path: the image race is `race/image` (`/race/image`, `/embed/race/image`, `/race/image/run`, `/ws/race/image`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from app.backends.real import NO_IMAGE_RACE, Backends, ImageBackend, ImageRaceBackend, RaceBackend, TextBackend
from app.demos.protocol import ImageRaceRequest, ImageRequest, ImageSamplersRequest, TextRequest, from_query, to_query
from app.export.trace import KINDS as EXPORT_KINDS
from app.render import image_race
from app.render.grid import placeholder_sheets
from app.render.image import lab_preview
from app.render.race import LANE_TITLES, WHY_COUNTS_DIFFER
from app.render.samplers import placeholder_lanes
from app.render.text import confidence_legend
from app.settings import Settings
from app.web.deps import BackendsDep, SettingsDep
from app.web.templating import render_block, templates
from app.why import frontier_view
from app.why.frontier_view import FrontierView
from models.image.request import LAB_FIELDS, lab_problem
from models.text.decoding import RACE_DEFAULT_STEPS, canvas_gaps
from models.text.frontier import race_rows

router = APIRouter(tags=["pages"])


@dataclass(frozen=True)
class Demo:
    """The words a demo page needs besides its settings (the shell `templates/demo.html` renders them)."""

    title: str  # <title>, before " · Diffusion Theater"
    heading: str  # the page's h1
    run_label: str  # the run section's accessible name
    idle: str  # the notice before the first run
    template: str = ""  # the page template; default "<kind>.html"


DEMOS = {
    "text": Demo("Text diffusion", "Masked diffusion: text", "Generation", "Press Space or Generate to start."),
    "image": Demo(
        "Image diffusion", "DDPM: a digit from noise", "Generation", "Press Space or Generate to start; keys 0-9 pick a digit."
    ),
    "race": Demo(
        "Race: diffusion vs autoregressive",
        "Race: diffusion against its autoregressive twin",
        "Race",
        "Press Space or Generate to start the race.",
    ),
    "race/image": Demo(
        "Image race: diffusion vs autoregressive",
        "Image race: a digit denoised against a digit painted pixel by pixel",
        "Image race",
        "Press Space or Generate to start the race; keys 0-9 pick a digit.",
        template="image_race.html",
    ),
    "image/grid": Demo(
        "Image grid: 16 digits at once",
        "Grid: 16 digits from one batched run",
        "Grid",
        "Press Space or Generate to start; keys 0-9 pick a digit.",
        template="image_grid.html",
    ),
    "image/samplers": Demo(
        "Samplers side by side: DDPM, DDIM, DPM-Solver++",
        "Samplers side by side: one digit, three ways down the noise",
        "Samplers",
        "Press Space or Generate to start all three; keys 0-9 pick a digit.",
        template="image_samplers.html",
    ),
}
IMAGE_KINDS = ("image", "image/grid", "image/samplers")  # the pages on the image DDPM alone (its knobs, its model line)

TEXT_OPTIONS = {
    "strategy": [
        # The trade-off each order makes, as measured by `evaluate --sweep` (see the text-diffusion card).
        ("confidence", "most confident first (LLaDA): fluent, repetitive"),
        ("random", "random order (MDLM): true samples, varied"),
        ("margin", "top-2 margin: varied"),
        ("entropy", "lowest entropy first: fluent, varied"),
    ],
    "remask": [
        ("none", "no remasking"),
        ("cap", "ReMDM cap"),
        ("conf", "ReMDM confidence"),
        ("loop", "ReMDM loop"),
    ],
}
IMAGE_OPTIONS = {
    "sampler": [("ddim", "DDIM"), ("ddpm", "DDPM"), ("dpm", "DPM-Solver++")],
    "digit": [("none", "none (unconditional)")] + [(str(d), str(d)) for d in range(10)],
}


# Diffusion steps the race page offers (a link may carry any other valid value; it is added to the menu).
RACE_STEPS = (8, 16, 32, 64)
IMAGE_RACE_STEPS = (20, 50, 100)  # the image race's DDIM steps, likewise
IMAGE_RACE_OPTIONS = {"digit": [(str(d), str(d)) for d in range(10)]}  # both lanes draw a digit: no "none"
# The image race's lanes before a run: name, title, the captions of its pictures.
IMAGE_RACE_LANES = [
    (image_race.AUTOREGRESSIVE, image_race.LANE_TITLES[image_race.AUTOREGRESSIVE], [Markup("canvas")]),
    (
        image_race.DIFFUSION,
        image_race.LANE_TITLES[image_race.DIFFUSION],
        [Markup("x<sub>t</sub> noisy state"), Markup("predicted x<sub>0</sub>")],
    ),
]

# Starting points for the race, as links (every setting lives in the URL): the second shows what the
# autoregressive lane cannot do, fill a gap using the text on its right.
RACE_PRESETS = [
    ("Continue a story", {"prompt": "Once upon a time", "length": "64", "steps": str(RACE_DEFAULT_STEPS)}),
    ("Fill a gap", {"prompt": "Tom had a red ball. ___ He was sad.", "length": "16", "steps": "8"}),
]


def step_labels(frontier: FrontierView) -> dict[int, str]:
    """The race's steps menu with each option's measured quality (the committed frontier, at 64 tokens)."""
    twin = frontier.twin.judge_ppl
    return {
        steps: f"{steps}: judge perplexity {row.judge_ppl:.0f} (twin {twin:.0f})"
        for steps, row in race_rows(frontier.rows).items()
    }


@dataclass(frozen=True)
class IdleCanvas:
    """A text canvas before its first step: each piece of fixed text with the blanks that follow it."""

    pieces: list[tuple[str, int]]
    blanks: int


def idle_canvas(request: TextRequest) -> IdleCanvas:
    texts, sizes = canvas_gaps(request.prompt, request.length)
    return IdleCanvas([(text, sizes[i] if i < len(sizes) else 0) for i, text in enumerate(texts)], sum(sizes))


def lab_links(request: ImageRequest) -> SimpleNamespace | None:
    """The image page when a run starts from a held-out digit (the image lab): what it does, the fields that keep it
    so when the form is sent again, and the ways back (the view that made it; a run from noise)."""
    if request.source is None or lab_problem(request):  # a bad combination was dropped with a note already
        return None
    hidden = [(name, str(value)) for name in LAB_FIELDS if (value := getattr(request, name)) is not None]
    from_noise = urlencode({k: v for k, v in to_query(request).items() if k not in LAB_FIELDS})
    if request.mask is not None:
        sentence = (
            f"Filling the hatched pixels of test digit no. {request.source} with RePaint (its own sampler: denoising "
            "steps with jumps back up the schedule; the Sampler setting does not apply)."
        )
        back = ("edit the mask", f"/image/inpaint?{urlencode({'index': request.source, 'mask': request.mask})}")
    else:
        sentence = (
            f"Denoising test digit no. {request.source} from t = {request.start_t}, noised as the forward process shows it."
        )
        back = ("back to the forward process", f"/image/forward?{urlencode({'index': request.source, 't': request.start_t})}")
    return SimpleNamespace(
        sentence=sentence, hidden=hidden, back_label=back[0], back_url=back[1], from_noise=f"/image?{from_noise}"
    )


def page_context(request: Request, kind: str, embed: bool, settings: Settings, backends: Backends) -> dict[str, Any]:
    query = dict(request.query_params)
    run_request, notes = from_query(kind, query, settings)
    autoplay = query.get("autoplay") == "1"
    by_kind: dict[str, TextBackend | ImageBackend | RaceBackend | ImageRaceBackend | None] = {
        "text": backends.text,
        "image": backends.image,
        "race": backends.race,
        "race/image": backends.image_race,
        "image/grid": backends.image,
        "image/samplers": backends.image,
    }
    backend = by_kind[kind]
    if backend is None:
        notes = [*notes, NO_IMAGE_RACE]
    params = to_query(run_request)
    image_race_page = isinstance(run_request, ImageRaceRequest)
    if isinstance(run_request, ImageRaceRequest):
        step_choices = sorted({*IMAGE_RACE_STEPS, run_request.steps})
    elif kind == "race" and isinstance(run_request, TextRequest):
        step_choices = sorted({*RACE_STEPS, run_request.steps})
    else:
        step_choices = []
    frontier = frontier_view.page_view() if kind == "race" else None  # read at request time, like /why's plot
    # the boxes of a run before its first frame (no layout jump): each lane, or each sheet, empty
    if image_race_page:
        lanes: Any = IMAGE_RACE_LANES
    elif isinstance(run_request, ImageSamplersRequest):
        lanes = placeholder_lanes(run_request)
    elif kind == "image/grid":
        lanes = placeholder_sheets()
    else:
        lanes = list(LANE_TITLES.items())
    return {
        "kind": kind,
        "page": DEMOS[kind],
        "embed": embed,
        "autoplay": autoplay,
        "req": run_request,
        "params": params,
        "query": urlencode(params),
        "request_json": json.dumps(run_request.model_dump(mode="json"), separators=(",", ":")),
        "notes": notes,
        "settings": settings,
        "options": IMAGE_OPTIONS if kind in IMAGE_KINDS else IMAGE_RACE_OPTIONS if image_race_page else TEXT_OPTIONS,
        "model_name": backend.name if backend is not None else "none loaded",
        "model_trained": backend.trained if backend is not None else False,
        "model_description": getattr(backend, "description", ""),
        "race_facts": getattr(backend, "facts", "") if image_race_page else backends.race.facts,
        "race_lanes": lanes,
        "race_note": image_race.WHY_COUNTS_DIFFER if image_race_page else WHY_COUNTS_DIFFER,
        "image_race": image_race.page_view(run_request) if isinstance(run_request, ImageRaceRequest) else None,
        "step_choices": step_choices,
        "step_labels": step_labels(frontier) if frontier else {},
        "frontier": frontier,
        "presets": [(label, urlencode(values)) for label, values in RACE_PRESETS] if kind == "race" else [],
        "untrained": backends.untrained,
        "confidence_legend": confidence_legend() if kind in ("text", "race") else [],
        "exportable": kind in EXPORT_KINDS,
        "idle_canvas": idle_canvas(run_request) if isinstance(run_request, TextRequest) else None,
        "lab_preview": lab_preview(run_request) if kind == "image" and isinstance(run_request, ImageRequest) else None,
        "lab": lab_links(run_request) if kind == "image" and isinstance(run_request, ImageRequest) else None,
        "active": autoplay,
        "page_path": f"/embed/{kind}" if embed else f"/{kind}",
    }


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, backends: BackendsDep) -> HTMLResponse:
    context = {"untrained": backends.untrained, "embed": False, "kind": "index", "backends": backends}
    return templates.TemplateResponse(request, "index.html", context)


def _add_demo(kind: str) -> None:
    """`/<kind>`, `/embed/<kind>` and `/<kind>/run`; the kind is a path (`race/image`), route names use `_`."""
    template = DEMOS[kind].template or f"{kind}.html"
    name = kind.replace("/", "_")

    def page_handler(embed: bool) -> Any:
        async def page(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
            context = page_context(request, kind, embed, settings, backends)
            return templates.TemplateResponse(request, template, context)

        return page

    async def run(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
        """The `run` block alone, active: swapping it in opens the websocket and sends the request."""
        context = page_context(request, kind, False, settings, backends)
        context["active"] = True
        return HTMLResponse(render_block("demo.html", "run", context))

    router.add_api_route(f"/{kind}", page_handler(False), response_class=HTMLResponse, name=f"{name}_page")
    router.add_api_route(f"/embed/{kind}", page_handler(True), response_class=HTMLResponse, name=f"{name}_embed")
    router.add_api_route(f"/{kind}/run", run, response_class=HTMLResponse, name=f"{name}_run")


for _kind in DEMOS:
    _add_demo(_kind)
