"""What each demo's page shows besides its settings, computed in Python for the template to render: the run
before its first frame (lanes, sheets, an idle canvas), menus with measured labels, presets, facts and notes.
Each demo's registry entry (`app.demos.registry`) names its function here; `app.routes.pages` merges the result
over `DEFAULTS`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from app.backends.interface import Backends
from app.render import image_race, image_race_page
from app.render.grid import placeholder_sheets
from app.render.image import lab_preview
from app.render.race import LANE_TITLES, WHY_COUNTS_DIFFER
from app.render.rework import region_phrase
from app.render.samplers import placeholder_lanes
from app.render.text import confidence_legend
from app.web.query import to_query
from app.why import frontier_view
from app.why.data_files import data_path
from app.why.frontier_view import FrontierView
from models.image.request import LAB_FIELDS, ImageRaceRequest, ImageRequest, ImageSamplersRequest, lab_problem
from models.text.decoding import EDIT_FIELDS, RACE_DEFAULT_STEPS, TextRequest, canvas_gaps
from models.text.frontier import race_rows
from models.text.rework import edit_problem

# Every key a demo page's template reads, with the value a demo that has no such part gives it.
DEFAULTS: dict[str, Any] = {
    "race_lanes": [],  # the boxes of a run before its first frame (no layout jump): each lane, or each sheet
    "race_facts": "",
    "race_note": "",
    "image_race": None,
    "step_choices": [],
    "step_labels": {},
    "frontier": None,
    "presets": [],
    "confidence_legend": [],
    "idle_canvas": None,
    "lab_preview": None,
    "lab": None,
    "infill_help": False,
    "rework": None,
    "rework_presets": [],
    "rework_measured": "",
    "train": None,
}

# Diffusion steps the race page offers (a link may carry any other valid value; it is added to the menu).
RACE_STEPS = (8, 16, 32, 64)
IMAGE_RACE_STEPS = (20, 50, 100)  # the image race's DDIM steps, likewise
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

# The seed's example: an early word sets the story's direction (her mood); the edit flips it and the rest has to
# follow. `models.text.rework_eval` measures this preset over many seeds (docs/rework-eval.json).
REWORK_PRESET = {
    "prompt": "Once upon a time, there was a little girl named Lily. She was very",
    "length": "48",
    "steps": "48",
    "edit_at": "0",
    "edit_word": "sad",
    "window": "8",
    "autoplay": "1",
}
REWORK_PRESETS = [("Change her mood", REWORK_PRESET)]
REWORK_EVAL = "rework-eval.json"


def rework_note(request: TextRequest, page_path: str) -> SimpleNamespace | None:
    """A reworked run's page: what the edit is, the fields that keep it when the form is sent again, and the ways
    back (the run it starts from; the same edit on the other page)."""
    if not request.is_rework or edit_problem(request):  # a bad combination was dropped with a note already
        return None
    query = to_query(request)
    base = urlencode({k: v for k, v in query.items() if k not in EDIT_FIELDS})
    region = region_phrase(request.redo, request.window)
    race = page_path.endswith("race")
    lanes = f"the diffusion lane with {region}; the twin keeps what came before and writes everything after it"
    word = request.edit_word.strip()
    sentence = f"Reworking word {request.edit_at} of the run these settings make: it becomes \u201c{word}\u201d, " + (
        f"{lanes}." if race else f"{region}."
    )
    other = "text" if race else "race"
    return SimpleNamespace(
        sentence=sentence,
        hidden=[(name, query[name]) for name in EDIT_FIELDS],
        base_url=f"{page_path}?{base}",
        other_url=f"{other}?{urlencode({**query, 'autoplay': '1'})}",
        other_label="the same edit on the text page" if race else "race this edit against the twin",
    )


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


# ---------------------------------------------------------------------------------------------------------
# Each demo's parts


def rework_measured() -> str:
    """The preset measured over many seeds (`models.text.rework_eval`, the committed docs/rework-eval.json), as it
    came out: read at request time, like /why's files, and parsed once per version of the file (as the frontier
    view is); empty when the file is missing."""
    path = data_path(REWORK_EVAL)
    return _measured_sentence(path, path.stat().st_mtime_ns) if path is not None else ""


@lru_cache(maxsize=4)
def _measured_sentence(path: Path, _mtime_ns: int) -> str:
    data = json.loads(path.read_text())
    lanes, base, seeds = data["lanes"], data["base"], data["seeds"]
    diffusion, twin = lanes["diffusion"], lanes["ar"]
    return (
        f"Measured on this preset over {seeds} seeds (word 0 \u2192 \u201csad\u201d): a sad word followed the edit in "
        f"{diffusion['follows_sad']} of {seeds} diffusion reworks ({data['window']} words each side) and in "
        f"{twin['follows_sad']} of {seeds} of the twin's rewrites ({base['follows_sad']} of {seeds} base texts had one). "
        f"The diffusion model changed {diffusion['mean_changed_after']:.1f} words after the edit in "
        f"{diffusion['mean_forward_passes']:.1f} passes; the twin {twin['mean_changed_after']:.1f} in "
        f"{twin['mean_forward_passes']:.0f}. Judge perplexity of the whole text (median): diffusion "
        f"{diffusion['median_judge_ppl_whole']:.1f}, twin {twin['median_judge_ppl_whole']:.1f}, before the edit "
        f"{base['median_judge_ppl_whole']:.1f}."
    )


def rework_presets() -> list[tuple[str, str]]:
    return [(label, urlencode(values)) for label, values in REWORK_PRESETS]


def text_parts(request: TextRequest, backends: Backends) -> dict[str, Any]:
    return {
        "confidence_legend": confidence_legend(),
        "idle_canvas": idle_canvas(request),
        "infill_help": True,
        "rework": rework_note(request, "text"),
        "rework_presets": rework_presets(),
        "rework_measured": rework_measured(),
    }


def race_parts(request: TextRequest, backends: Backends) -> dict[str, Any]:
    frontier = frontier_view.page_view()  # read at request time, like /why's plot
    return {
        "confidence_legend": confidence_legend(),
        "idle_canvas": idle_canvas(request),
        "race_lanes": list(LANE_TITLES.items()),
        "race_facts": backends.race.facts,
        "race_note": WHY_COUNTS_DIFFER,
        "step_choices": sorted({*RACE_STEPS, request.steps}),
        "step_labels": step_labels(frontier) if frontier else {},
        "frontier": frontier,
        "presets": [(label, urlencode(values)) for label, values in RACE_PRESETS],
        "rework": rework_note(request, "race"),
        "rework_presets": rework_presets(),
        "rework_measured": rework_measured(),
    }


def image_parts(request: ImageRequest, backends: Backends) -> dict[str, Any]:
    return {"lab_preview": lab_preview(request), "lab": lab_links(request)}


def grid_parts(request: ImageRequest, backends: Backends) -> dict[str, Any]:
    return {"race_lanes": placeholder_sheets()}


def samplers_parts(request: ImageSamplersRequest, backends: Backends) -> dict[str, Any]:
    return {"race_lanes": placeholder_lanes(request)}


def image_race_parts(request: ImageRaceRequest, backends: Backends) -> dict[str, Any]:
    backend = backends.image_race
    return {
        "race_lanes": IMAGE_RACE_LANES,
        "race_facts": backend.facts if backend is not None else "",
        "race_note": image_race.WHY_COUNTS_DIFFER,
        "image_race": image_race_page.page_view(request),
        "step_choices": sorted({*IMAGE_RACE_STEPS, request.steps}),
    }
