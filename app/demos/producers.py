"""Producers: a sampler's frames -> the deferred renders the engine runs in its render thread.

Each demo's registry entry (`app.demos.registry`) names one function here, `(backends, request) -> Producer`:
the path from a request to its sampler and its run renderer, written out. Producers yield each frame as a
deferred render, so the sampler thread never waits for rendering (see app/engine/local.py). One run renderer per
run keeps what a run needs across its frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from time import perf_counter
from typing import Any, Protocol

from app.backends.interface import Backends
from app.engine.interface import Producer
from app.render.grid import GridRun
from app.render.image import ImageRun, lab_source
from app.render.image_race import ImageRaceRun
from app.render.message import Deferred, Rendered
from app.render.race import RaceRun
from app.render.samplers import SamplersRun
from app.render.text import TextRun
from app.render.train import TrainRun
from models.image.grid import grid_request
from models.image.request import ImageRaceRequest, ImageRequest, ImageSamplersRequest
from models.image.samplers_race import race_samplers
from models.text.decoding import RaceRequest, TextRequest
from models.text.live_request import TrainRequest, byte_frequency_loss, split_text, training_text


class RunRenderer(Protocol):
    """One run's renderer: it may keep state across the run's frames (a memo, a decision log)."""

    def frame(self, frame: Any, ms_per_step: float) -> Rendered: ...

    def done(self, frame: Any, ms_total: float) -> Rendered: ...


def _producer(frames: Callable[[Callable[[], bool]], Iterator[Any]], new_run: Callable[[], RunRenderer]) -> Producer:
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


def text_run(backends: Backends, request: TextRequest) -> Producer:
    """The diffusion model's sampler; its run renderer keeps the decision log (and the remasking one)."""
    return _producer(lambda stop: backends.text.sample(request, stop), lambda: TextRun(request))


def race_run(backends: Backends, request: RaceRequest) -> Producer:
    """Both text models on one clock (`models.text.race`)."""
    return _producer(lambda stop: backends.race.sample(request, stop), lambda: RaceRun(request))


def image_run(backends: Backends, request: ImageRequest) -> Producer:
    """The DDPM, from noise or from a held-out digit (the lab); frames carry the schedule's noise level."""
    schedule = backends.image.noise_schedule()
    return _producer(lambda stop: backends.image.sample(request, stop), lambda: ImageRun(schedule, lab_source(request)))


def grid_run(backends: Backends, request: ImageRequest) -> Producer:
    """16 samples of `request` in one batched run (the image backend's own sampler, `batch` set here)."""
    batch = grid_request(request)
    return _producer(lambda stop: backends.image.sample(batch, stop), lambda: GridRun(request))


def samplers_run(backends: Backends, request: ImageSamplersRequest) -> Producer:
    """Three lanes of the image backend's sampler on one clock (`models.image.samplers_race`)."""
    return _producer(lambda stop: race_samplers(backends.image.sample, request, stop), lambda: SamplersRun(request))


def image_race_run(backends: Backends, request: ImageRaceRequest) -> Producer:
    """The DDPM against the pixel-by-pixel autoregressive model (`models.image.race`)."""
    race = backends.image_race
    if race is None:  # Backends.check refuses such a request before a job starts
        raise RuntimeError("no image race backend")
    return _producer(lambda stop: race.sample(request, stop), lambda: ImageRaceRun(request))


def train_run(backends: Backends, request: TrainRequest) -> Producer:
    """The live twins trained on the request's text (`models.text.live_train`): a frame per measured point, then the
    summary. The training takes the worker's core for the request's seconds."""
    train, held_out = split_text(training_text(request))

    def produce(should_stop: Callable[[], bool]) -> Iterator[Deferred]:
        run = TrainRun(request, byte_frequency_loss(train, held_out))
        for point in backends.trainer.train(request, should_stop):
            yield partial(run.frame, point)
        if run.points and not should_stop():
            yield run.done

    return produce


def recorded_train_run(request: TrainRequest, points: list[Any], source: str) -> Producer:
    """A recorded run of `request` (`models.text.live_record`) through the same renderer: what the prewarm puts in
    the replay cache, so the default run is on screen as soon as the page opens."""
    train, held_out = split_text(training_text(request))

    def produce(_should_stop: Callable[[], bool]) -> Iterator[Deferred]:
        run = TrainRun(request, byte_frequency_loss(train, held_out), recorded=source)
        for point in points:
            yield partial(run.frame, point)
        yield run.done

    return produce
