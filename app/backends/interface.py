"""What the web layer needs from the models: one backend per model (or pair of models), and `Backends`, the
set loaded at startup. A backend wraps a model behind `sample(request, should_stop) -> Iterator[frame]`; the
real ones are `app.backends.real`, the test doubles `app.backends.fakes`, and `app.backends.load` builds them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from app.backends.live_twins import LiveTwins
from app.errors import Close, RequestError
from models.frames import ImageFrame, TextFrame
from models.image.race_frames import ImageRaceFrame
from models.image.request import ImageRaceRequest, ImageRequest
from models.text.decoding import RaceRequest, TextRequest, context_problem
from models.text.race import RaceFrame, race_problem

ShouldStop = Callable[[], bool]


class TextBackend(Protocol):
    """`context` (tokens the model reads) and `count_tokens(text)` are optional: where a backend has them,
    requests that cannot fit are refused before a job starts (`Backends.check`)."""

    name: str
    trained: bool
    description: str

    def sample(self, request: TextRequest, should_stop: ShouldStop | None = None) -> Iterator[TextFrame]: ...


class ImageBackend(Protocol):
    name: str
    trained: bool
    description: str

    def sample(self, request: ImageRequest, should_stop: ShouldStop | None = None) -> Iterator[ImageFrame]: ...

    def noise_schedule(self) -> np.ndarray: ...


class RaceBackend(Protocol):
    """The diffusion model and its autoregressive twin, raced on one clock (`models.text.race`).
    `untrained`: the names of whichever of the two models is not trained; `facts`: one line on what the two
    models share (shown on the race page)."""

    name: str
    trained: bool
    untrained: list[str]
    facts: str

    def sample(self, request: RaceRequest, should_stop: ShouldStop | None = None) -> Iterator[RaceFrame]: ...


class ImageRaceBackend(Protocol):
    """The DDPM against the pixel-by-pixel autoregressive model (`models.image.race`), on one clock.
    `untrained`: whichever of the two is not trained; `facts`: one line on the two lanes' networks, read off
    the loaded models (shown on the page)."""

    name: str
    trained: bool
    untrained: list[str]
    facts: str

    def sample(self, request: ImageRaceRequest, should_stop: ShouldStop | None = None) -> Iterator[ImageRaceFrame]: ...


NO_IMAGE_RACE = "this server has no image race loaded (its backends were built without one)"


@dataclass
class Backends:
    text: TextBackend
    image: ImageBackend
    race: RaceBackend
    problems: dict[str, str] = field(default_factory=dict)  # checkpoint -> why it did not load (`/readyz` says)
    # `load_backends` always sets it (untrained when its checkpoint is missing); None only where a caller built
    # Backends without it (tests of the other demos): the image race's page says so and its runs are refused.
    image_race: ImageRaceBackend | None = None
    # the live twins of /train: trained per run, nothing to load (tests serve `LiveTwins.small()`)
    trainer: LiveTwins = field(default_factory=LiveTwins)

    @property
    def untrained(self) -> list[str]:
        names = [b.name for b in (self.text, self.image) if not b.trained]
        for name in [*self.race.untrained, *(self.image_race.untrained if self.image_race is not None else [])]:
            if name not in names:
                names.append(name)
        return names

    def check(self, request: object) -> None:
        """Refuse, before any job starts, what the loaded model cannot serve (RequestError, close 1008)."""
        if isinstance(request, ImageRaceRequest) and self.image_race is None:
            raise RequestError(NO_IMAGE_RACE, Close.SERVER_FAULT)
        if not isinstance(request, TextRequest):
            return
        if isinstance(request, RaceRequest):
            problem = race_problem(request.prompt)
            if problem:
                raise RequestError(problem)
        context = getattr(self.text, "context", None)
        count_tokens = getattr(self.text, "count_tokens", None)
        if isinstance(context, int) and callable(count_tokens):
            problem = context_problem(request, context, count_tokens)
            if problem:
                raise RequestError(problem)
