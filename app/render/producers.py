"""Producers: a sampler's frames -> the deferred renders the engine runs in its render thread.

Producers yield each frame as a deferred render (`functools.partial`), so the sampler thread never waits for
rendering (see app/engine/local.py). One run renderer per run keeps what a run needs across its frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from time import perf_counter
from typing import Any, Protocol

import numpy as np

from app.backends.real import Backends
from app.demos.protocol import ImageRaceRequest, ImageRequest, ImageSamplersRequest, RaceRequest, Request, TextRequest
from app.render.grid import GridRun
from app.render.image import ImageRun, lab_source
from app.render.image_race import ImageRaceRun
from app.render.message import Deferred, Rendered
from app.render.race import RaceRun
from app.render.samplers import SamplersRun
from app.render.text import TextRun
from models.frames import ImageFrame, TextFrame
from models.image.grid import grid_request
from models.image.samplers_race import race_samplers
from models.text.race import RaceFrame


class RunRenderer(Protocol):
    """One run's renderer: it may keep state across the run's frames (a memo, a decision log)."""

    def frame(self, frame: Any, ms_per_step: float) -> Rendered: ...

    def done(self, frame: Any, ms_total: float) -> Rendered: ...


def _producer(
    frames: Callable[[Callable[[], bool]], Iterator[Any]], new_run: Callable[[], RunRenderer]
) -> Callable[..., Iterator[Deferred]]:
    """Yields one deferred render per frame, then the done message if the run finished;
    `ms_per_step` is the sampler's mean time a step so far (rendering happens later, elsewhere). The render
    thread runs the deferred renders in order, so a run renderer sees its frames in order, then `done`."""

    def produce(should_stop: Callable[[], bool]) -> Iterator[Deferred]:
        run = new_run()
        last = None
        total_ms = 0.0
        started = perf_counter()
        for frame in frames(should_stop):
            elapsed = (perf_counter() - started) * 1000
            total_ms += elapsed if frame.step > 0 else 0.0
            # the mean so far: the last frame's counter then states the same figure as the done message
            yield partial(run.frame, frame, total_ms / frame.step if frame.step > 0 else elapsed)
            last = frame
            started = perf_counter()
        if last is not None and last.step == last.total and not should_stop():
            yield partial(run.done, last, total_ms)

    return produce


def text_producer(sample: Callable[..., Iterator[TextFrame]], request: TextRequest) -> Callable[..., Iterator[Deferred]]:
    return _producer(partial(sample, request), partial(TextRun, request.remask != "none"))


def race_producer(sample: Callable[..., Iterator[RaceFrame]], request: TextRequest) -> Callable[..., Iterator[Deferred]]:
    return _producer(partial(sample, request), partial(RaceRun, request))


def image_producer(
    sample: Callable[..., Iterator[ImageFrame]], request: ImageRequest, schedule: np.ndarray
) -> Callable[..., Iterator[Deferred]]:
    return _producer(partial(sample, request), partial(ImageRun, schedule, lab_source(request)))


def image_race_producer(sample: Callable[..., Iterator[Any]], request: ImageRaceRequest) -> Callable[..., Iterator[Deferred]]:
    return _producer(partial(sample, request), partial(ImageRaceRun, request))


def grid_producer(sample: Callable[..., Iterator[ImageFrame]], request: ImageRequest) -> Callable[..., Iterator[Deferred]]:
    """16 samples of `request` in one batched run (the image backend's own sampler, `batch` set here)."""
    return _producer(partial(sample, grid_request(request)), partial(GridRun, request))


def samplers_producer(
    sample: Callable[..., Iterator[ImageFrame]], request: ImageSamplersRequest
) -> Callable[..., Iterator[Deferred]]:
    """Three lanes of the image backend's sampler on one clock (`models.image.samplers_race`)."""
    return _producer(partial(race_samplers, sample, request), partial(SamplersRun, request))


def make_producer(kind: str, backends: Backends, request: Request) -> Callable[..., Iterator[Deferred]]:
    """The producer of a run of `kind`: what the websocket routes and the export endpoints hand the engine. The
    kind decides where a request type is shared (the grid takes the image page's `ImageRequest`)."""
    if kind == "image/grid":
        if not isinstance(request, ImageRequest):  # REQUESTS pairs the kind with ImageRequest
            raise TypeError(f"an image/grid run takes an ImageRequest, not {type(request).__name__}")
        return grid_producer(backends.image.sample, request)
    if isinstance(request, ImageSamplersRequest):
        return samplers_producer(backends.image.sample, request)
    if isinstance(request, ImageRaceRequest):
        if backends.image_race is None:  # Backends.check refuses such a request before a job starts
            raise RuntimeError("no image race backend")
        return image_race_producer(backends.image_race.sample, request)
    if isinstance(request, RaceRequest):
        return race_producer(backends.race.sample, request)
    if isinstance(request, TextRequest):
        return text_producer(backends.text.sample, request)
    return image_producer(backends.image.sample, request, backends.image.noise_schedule())
