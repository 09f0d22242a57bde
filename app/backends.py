"""What the web layer needs from the models, and how it gets them.

A backend wraps one model behind `sample(request, should_stop) -> Iterator[frame]`. The real ones call
`models.text.sample` / `models.image.sample`; `app.fakes` provides stand-ins. Models load once, in the
app's lifespan, in a worker thread (`load_backends`), never at import time and never on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from app.protocol import ImageRequest, TextRequest
from app.settings import Settings
from models.frames import ImageFrame, TextFrame

log = logging.getLogger("theater.models")

ShouldStop = Callable[[], bool]


class TextBackend(Protocol):
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


@dataclass
class Backends:
    text: TextBackend
    image: ImageBackend

    @property
    def untrained(self) -> list[str]:
        return [b.name for b in (self.text, self.image) if not b.trained]


# ---------------------------------------------------------------------------------------------------------
# Real models


class RealText:
    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = str(getattr(model, "name", "text-diffusion"))
        self.trained = bool(getattr(model, "trained", False))
        card = getattr(model, "card", {}) or {}
        self.description = str(card.get("summary", "")) if isinstance(card, dict) else ""

    def sample(self, request: TextRequest, should_stop: ShouldStop | None = None) -> Iterator[TextFrame]:
        from models.text import sample as text_sample

        args = text_sample.TextRequest(**request.model_dump())
        return text_sample.sample_diffusion(self.model, args, should_stop=should_stop)


class RealImage:
    def __init__(self, model: Any) -> None:
        from models.image.model import noise_schedule

        self.model = model
        self.name = str(getattr(model, "name", "image-ddpm"))
        self.trained = bool(getattr(model, "trained", False))
        card = getattr(model, "card", {}) or {}
        self.description = str(card.get("summary", "")) if isinstance(card, dict) else ""
        self._schedule = np.asarray(noise_schedule(model), dtype=np.float64)

    def noise_schedule(self) -> np.ndarray:
        return self._schedule

    def sample(self, request: ImageRequest, should_stop: ShouldStop | None = None) -> Iterator[ImageFrame]:
        from models.image import sample as image_sample

        args = image_sample.ImageRequest(**request.model_dump(), batch=1)
        return image_sample.sample_image(self.model, args, should_stop=should_stop)


def _load_text(settings: Settings) -> TextBackend:
    from app.fakes import FakeText

    try:
        from models.text.model import load_text_model, untrained_text_model
        from models.text.sample import sample_diffusion  # noqa: F401  (the sampler must exist too)
    except ImportError as error:
        log.warning("UNTRAINED: models.text sampler not available (%s); serving the fake text model", error)
        return FakeText(settings.fake_step_ms / 1000)
    folder = settings.checkpoint_dir / "text-diffusion"
    try:
        return RealText(load_text_model(folder))
    except Exception as error:  # missing folder, checksum mismatch, config mismatch: say so, run untrained
        log.warning("UNTRAINED: could not load %s (%s); serving a freshly initialised text model", folder, error)
        return RealText(untrained_text_model(causal=False))


def _load_image(settings: Settings) -> ImageBackend:
    from app.fakes import FakeImage

    try:
        from models.image.model import load_image_model, untrained_image_model
        from models.image.sample import sample_image  # noqa: F401
    except ImportError as error:
        log.warning("UNTRAINED: models.image sampler not available (%s); serving the fake image model", error)
        return FakeImage(settings.fake_step_ms / 1000)
    folder = settings.checkpoint_dir / "image-ddpm"
    classifier = settings.checkpoint_dir / "digit-classifier"
    try:
        return RealImage(load_image_model(folder, classifier if classifier.exists() else None))
    except Exception as error:
        log.warning("UNTRAINED: could not load %s (%s); serving a freshly initialised image model", folder, error)
    try:  # the digit classifier may be trained even when the image model is not: keep the meter honest
        from models.image.model import load_classifier

        return RealImage(untrained_image_model(classifier=load_classifier(classifier)))
    except Exception as error:
        log.warning("no digit classifier (%s): the 'decided' meter is off", error)
        return RealImage(untrained_image_model())


def load_backends(settings: Settings) -> Backends:
    """Blocking: call it from a worker thread."""
    if settings.models == "fake":
        from app.fakes import FakeImage, FakeText

        step = settings.fake_step_ms / 1000
        return Backends(text=FakeText(step), image=FakeImage(step))
    return Backends(text=_load_text(settings), image=_load_image(settings))
