"""The demo registry: one entry per demo, and the only place that names a demo's kind.

A demo's kind is its path: `/<kind>` (its page), `/embed/<kind>`, `/<kind>/run` (the run fragment), `/ws/<kind>`
(its websocket), `/export/<kind>.json` and `.gif`. Its entry holds everything the rest of the app asks about it:
the request type and its limits, the backend and the producer that runs it, the page (template, words, option
labels, page parts), the GIF renderer and the models a trace names, and whether its default run is prewarmed.
Routes, pages, export, prewarm, the engine's producers and the worker all read it. Adding a demo: one entry
here, one run renderer (`app/render/`), one template (CONTRIBUTING.md walks through it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from app.backends.interface import Backends
from app.demos import limits, page_parts, producers, train_parts, train_record
from app.engine.interface import Producer
from app.export import gif, gif_images, gif_text, gif_train
from app.settings import Settings
from models.image.request import ImageRaceRequest, ImageRequest, ImageSamplersRequest
from models.requests import StrictRequest
from models.text.decoding import RaceRequest, TextRequest
from models.text.live_request import TrainRequest

Options = dict[str, list[tuple[str, str]]]  # a select's name -> its (value, label) choices
GifRenderer = Callable[[Sequence[dict[str, Any]]], Iterator[Image.Image]]  # the frames' JSON -> one image each


@dataclass(frozen=True)
class Page:
    """The words a demo page needs besides its settings (the shell `templates/demo.html` renders them)."""

    title: str  # <title>, before " · Diffusion Theater"
    heading: str  # the page's h1
    run_label: str  # the run section's accessible name
    idle: str  # the notice before the first run
    template: str  # the page template (it extends demo.html)
    placeholder: str  # the macro of templates/stream.html that draws the run before its first frame
    action: str = "Generate"  # the start button's word


@dataclass(frozen=True)
class Demo:
    kind: str
    request: type[StrictRequest]  # parses the websocket message and the page's query string
    check: Callable[[Any, Settings], None]  # the web layer's limits (`app.demos.limits`): RequestError
    backend: Callable[[Backends], Any]  # the backend the page names (its model line); None: not loaded
    producer: Callable[[Backends, Any], Producer]  # (backends, request) -> the run (`app.demos.producers`)
    page: Page
    parts: Callable[[Any, Backends], dict[str, Any]]  # the page's demo-specific parts (`app.demos.page_parts`)
    gif: GifRenderer  # `/export/<kind>.gif` (`app.export`)
    models: Callable[[Backends], list[Any]]  # the models a trace names: backends, loaded models, checkpoint names
    options: Options = field(default_factory=dict)  # the page's select menus
    prewarm: bool = True  # its default run is computed into the replay cache at startup
    # (backends, request) -> a producer replaying a committed recording of that request, or None: what the prewarm
    # caches instead of computing (the in-process engine), so a long default run is ready when the page opens
    recorded: Callable[[Backends, Any], Producer | None] | None = None

    @property
    def socket_path(self) -> str:
        return f"/ws/{self.kind}"

    @property
    def route_name(self) -> str:
        """The kind in route names (`race/image` -> `race_image`)."""
        return self.kind.replace("/", "_")


TEXT_OPTIONS: Options = {
    "strategy": [
        # The trade-off each order makes, as measured by `evaluate --sweep` (see the text-diffusion card).
        ("confidence", "most confident first (LLaDA): fluent, repetitive"),
        ("random", "random order (MDLM): true samples, varied"),
        ("margin", "top-2 margin: varied"),
        ("entropy", "lowest entropy first: fluent, varied"),
    ],
    "remask": [("none", "no remasking"), ("cap", "ReMDM cap"), ("conf", "ReMDM confidence"), ("loop", "ReMDM loop")],
}
DIGITS = [(str(d), str(d)) for d in range(10)]
IMAGE_OPTIONS: Options = {
    "sampler": [("ddim", "DDIM"), ("ddpm", "DDPM"), ("dpm", "DPM-Solver++")],
    "digit": [("none", "none (unconditional)"), *DIGITS],
}
IMAGE_RACE_OPTIONS: Options = {"digit": DIGITS}  # both lanes draw a digit: no "none"
CLASSIFIER = "digit-classifier"  # its probabilities ride on the image frames (the "decided" meter)


def _image_models(backends: Backends) -> list[Any]:
    """The DDPM and, when loaded, the digit classifier whose probabilities the frames carry."""
    classifier = getattr(getattr(backends.image, "model", None), "classifier", None)
    return [backends.image, *([CLASSIFIER] if classifier is not None else [])]


def _race_models(backends: Backends) -> list[Any]:
    lanes = [getattr(backends.race, "diffusion", None), getattr(backends.race, "autoregressive", None)]
    return [backends.race] if None in lanes else lanes  # the fakes hold no models: the backend names itself


def _image_race_models(backends: Backends) -> list[Any]:
    race = backends.image_race
    lanes = [getattr(race, "image", None), getattr(race, "pixel", None)]
    return [race] if None in lanes else lanes


DEMOS: dict[str, Demo] = {
    demo.kind: demo
    for demo in (
        Demo(
            kind="text",
            request=TextRequest,
            check=limits.check_text,
            backend=lambda b: b.text,
            producer=producers.text_run,
            page=Page(
                "Text diffusion", "Masked diffusion: text", "Generation", "Press Space or Generate to start.", "text.html", "text"
            ),
            parts=page_parts.text_parts,
            gif=gif_text.text_images,
            models=lambda b: [b.text],
            options=TEXT_OPTIONS,
        ),
        Demo(
            kind="image",
            request=ImageRequest,
            check=limits.check_image,
            backend=lambda b: b.image,
            producer=producers.image_run,
            page=Page(
                "Image diffusion",
                "DDPM: a digit from noise",
                "Generation",
                "Press Space or Generate to start; keys 0-9 pick a digit.",
                "image.html",
                "image",
            ),
            parts=page_parts.image_parts,
            gif=gif.image_images,
            models=_image_models,
            options=IMAGE_OPTIONS,
        ),
        Demo(
            kind="race",
            request=RaceRequest,
            check=limits.check_text,
            backend=lambda b: b.race,
            producer=producers.race_run,
            page=Page(
                "Race: diffusion vs autoregressive",
                "Race: diffusion against its autoregressive twin",
                "Race",
                "Press Space or Generate to start the race.",
                "race.html",
                "race",
            ),
            parts=page_parts.race_parts,
            gif=gif_text.race_images,
            models=_race_models,
            options=TEXT_OPTIONS,
        ),
        Demo(
            kind="race/image",  # the DDPM against the pixel-by-pixel autoregressive model
            request=ImageRaceRequest,
            check=limits.check_image_race,
            backend=lambda b: b.image_race,
            producer=producers.image_race_run,
            page=Page(
                "Image race: diffusion vs autoregressive",
                "Image race: a digit denoised against a digit painted pixel by pixel",
                "Image race",
                "Press Space or Generate to start the race; keys 0-9 pick a digit.",
                "image_race.html",
                "image_race",
            ),
            parts=page_parts.image_race_parts,
            gif=gif_images.image_race_images,
            models=_image_race_models,
            options=IMAGE_RACE_OPTIONS,
        ),
        Demo(
            kind="image/grid",  # 16 samples of the image page's request at once: it shares `ImageRequest`
            request=ImageRequest,
            check=limits.check_grid,
            backend=lambda b: b.image,
            producer=producers.grid_run,
            page=Page(
                "Image grid: 16 digits at once",
                "Grid: 16 digits from one batched run",
                "Grid",
                "Press Space or Generate to start; keys 0-9 pick a digit.",
                "image_grid.html",
                "grid",
            ),
            parts=page_parts.grid_parts,
            gif=gif_images.grid_images,
            models=_image_models,
            options=IMAGE_OPTIONS,
        ),
        Demo(
            kind="image/samplers",  # DDPM, DDIM and DPM-Solver++ side by side
            request=ImageSamplersRequest,
            check=limits.check_samplers,
            backend=lambda b: b.image,
            producer=producers.samplers_run,
            page=Page(
                "Samplers side by side: DDPM, DDIM, DPM-Solver++",
                "Samplers side by side: one digit, three ways down the noise",
                "Samplers",
                "Press Space or Generate to start all three; keys 0-9 pick a digit.",
                "image_samplers.html",
                "samplers",
            ),
            parts=page_parts.samplers_parts,
            gif=gif_images.samplers_images,
            models=_image_models,
            options=IMAGE_OPTIONS,
            # ~1,070 passes of the UNet by default (half a minute of a core at startup), and its frames come faster
            # than the player shows them anyway
            prewarm=False,
        ),
        Demo(
            kind="train",  # the data-efficiency claim as a live experiment: two tiny twins trained on one text
            request=TrainRequest,
            check=limits.check_train,
            backend=lambda b: b.trainer,
            producer=producers.train_run,
            page=Page(
                "Train: the twin overfits, diffusion keeps learning",
                "Train both models live: who keeps learning from the same text?",
                "Training",
                "Press Space or Train to start.",
                "train.html",
                "train",
                "Train",
            ),
            parts=train_parts.train_parts,
            gif=gif_train.train_images,
            models=lambda b: [b.trainer],
            recorded=train_record.recorded_producer,
        ),
    )
}


def demo(kind: str) -> Demo:
    """The entry of `kind` (KeyError for a kind no demo has)."""
    return DEMOS[kind]


def producer_factory(backends: Backends) -> Callable[[str, Any], Producer]:
    """(kind, request) -> its producer over these backends: what the in-process engine computes a run with."""

    def make(kind: str, request: Any) -> Producer:
        return DEMOS[kind].producer(backends, request)

    return make
