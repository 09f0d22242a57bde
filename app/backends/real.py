"""What the web layer needs from the models, and how it gets them.

A backend wraps one model behind `sample(request, should_stop) -> Iterator[frame]`. The real ones call
`models.text.sample` / `models.image.sample` / the races (`models.text.race`, `models.image.race`), passing the
request as it is (the protocol's request types are the samplers'); `app.backends.fakes` provides stand-ins. Models load
once, in the app's lifespan, in a worker thread (`load_backends`), never at import time and never on the event
loop; torch is imported only then. The image race shares the image backend's loaded DDPM; the grid and the
samplers side by side need no backend of their own: they run the image backend's `sample` (with `batch` set, or
three of it interleaved; `app.render.producers`).
The context and race checks are the models' own rules (`models.text.decoding`, `models.text.race`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from app.backends.fakes import FakeImage, FakeImageRace, FakeRace, FakeText
from app.demos.protocol import Close, ImageRaceRequest, ImageRequest, RaceRequest, Request, RequestError, TextRequest
from app.engine.local import Refused
from app.settings import Settings
from models.frames import ImageFrame, TextFrame
from models.image.race_frames import ImageRaceFrame
from models.text.decoding import SamplingError, context_problem
from models.text.race import AUTOREGRESSIVE, DIFFUSION, RaceFrame, race_problem, sample_race

log = logging.getLogger("theater.models")

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

    @property
    def untrained(self) -> list[str]:
        names = [b.name for b in (self.text, self.image) if not b.trained]
        for name in [*self.race.untrained, *(self.image_race.untrained if self.image_race is not None else [])]:
            if name not in names:
                names.append(name)
        return names

    def check(self, request: Request) -> None:
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


# ---------------------------------------------------------------------------------------------------------
# Real models


class RealText:
    """`judge`: the independent judge (`models.text.judge`); None (said on /readyz) leaves runs unjudged."""

    def __init__(self, model: Any, judge: Any = None) -> None:
        self.model = model
        self.judge = judge
        self.name = str(getattr(model, "name", "text-diffusion"))
        self.trained = bool(getattr(model, "trained", False))
        card = getattr(model, "card", {}) or {}
        self.description = str(card.get("summary", "")) if isinstance(card, dict) else ""
        self.context = int(model.context)

    def count_tokens(self, text: str) -> int:
        from models.text.sample import count_tokens

        return count_tokens(self.model, text)  # as the sampler counts its canvas

    def sample(self, request: TextRequest, should_stop: ShouldStop | None = None) -> Iterator[TextFrame]:
        from models.text.judge import judged
        from models.text.sample import sample_diffusion

        try:
            frames = sample_diffusion(self.model, request, should_stop=should_stop)
            if self.judge is None:
                yield from frames
                return
            yield from judged(frames, self.judge, self.model, self._without_remasking(request))
        except SamplingError as error:  # the sampler's refusal is the client's error, not a fault
            raise Refused(str(error)) from error

    def _without_remasking(self, request: TextRequest) -> Callable[[], TextFrame] | None:
        """With remasking: the same request and seed without it, one token a pass (more steps than tokens commit
        one a step either way), whose judged text the done summary sets before this run's (before -> after)."""
        if request.remask == "none":
            return None
        from models.text.sample import sample_diffusion

        plain = request.model_copy(update={"remask": "none", "steps": min(request.steps, sum(request.gap_sizes))})

        def draw() -> TextFrame:
            *_, last = sample_diffusion(self.model, plain)
            return last

        return draw


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

        try:  # `batch` is the grid's (app.render.producers sets it); from noise or a held-out digit
            yield from image_sample.sample_request(self.model, request, should_stop=should_stop)
        except image_sample.SamplingError as error:
            raise Refused(str(error)) from error


class RealRace:
    def __init__(self, diffusion: Any, autoregressive: Any, judge: Any = None) -> None:
        self.diffusion, self.autoregressive = diffusion, autoregressive
        self.judge = judge
        self.name = f"{diffusion.name} vs {autoregressive.name}"
        self.untrained = [str(m.name) for m in (diffusion, autoregressive) if not m.trained]
        self.trained = not self.untrained
        self.facts = _shared_facts(diffusion, autoregressive)

    def sample(self, request: RaceRequest, should_stop: ShouldStop | None = None) -> Iterator[RaceFrame]:
        from models.text.judge import judged_race

        try:
            races = sample_race(self.diffusion, self.autoregressive, request, should_stop=should_stop)
            if self.judge is None:
                yield from races
                return
            models = {DIFFUSION: self.diffusion, AUTOREGRESSIVE: self.autoregressive}
            yield from judged_race(races, self.judge, models)
        except SamplingError as error:
            raise Refused(str(error)) from error


class RealImageRace:
    """The image race over the loaded DDPM (the image backend's own `ImageModel`, not a second copy) and the
    autoregressive PixelCNN."""

    def __init__(self, pixel: Any, image: Any) -> None:
        self.pixel, self.image = pixel, image
        self.name = f"{image.name} vs {pixel.name}"
        self.untrained = [str(m.name) for m in (image, pixel) if not m.trained]
        self.trained = not self.untrained
        self.facts = _image_race_facts(pixel, image)

    def sample(self, request: ImageRaceRequest, should_stop: ShouldStop | None = None) -> Iterator[ImageRaceFrame]:
        from models.image.race import sample_image_race
        from models.image.sample import SamplingError as ImageSamplingError

        try:
            yield from sample_image_race(self.pixel, self.image, request, should_stop=should_stop)
        except ImageSamplingError as error:
            raise Refused(str(error)) from error


def _image_race_facts(pixel: Any, image: Any) -> str:
    """What the two lanes are, read off the loaded networks (not written by hand)."""
    config = pixel.network.config
    pixel_params = pixel.network.parameter_count()
    unet_params = sum(p.numel() for p in image.unet.parameters())
    return (
        f"Autoregressive: a Gated PixelCNN, {config.layers} layers, {config.channels} channels, {config.levels} "
        f"intensity levels, {pixel_params / 1e6:.2f}M parameters, one pixel a pass. Diffusion: the DDPM's UNet, "
        f"{unet_params / 1e6:.2f}M parameters, sampled with DDIM (guidance runs both halves as one batch: one "
        "pass a step). Both are conditioned on the digit and trained on MNIST."
    )


def _shared_facts(diffusion: Any, autoregressive: Any) -> str:
    """What the two lanes share, read off the loaded networks (not written by hand)."""
    a, b = diffusion.network.config.to_dict(), autoregressive.network.config.to_dict()
    # causal (and the diffusion model's shift, which only says which row predicts which position) is the objective,
    # not the network: everything else must match for a like-for-like race
    objective = {"causal", "shift"}
    differ = sorted(k for k in a if k not in objective and b.get(k) != a[k])
    params = diffusion.network.parameter_count()
    if differ or params != autoregressive.network.parameter_count():
        return f"The two networks differ in {', '.join(differ) or 'parameter count'}: this is not a like-for-like race."
    shifted = " (and the diffusion model reads each position from the one before, as the twin does)" if a["shift"] else ""
    return (
        f"Both lanes: one transformer class, {a['depth']} layers, width {a['width']}, {a['heads']} heads, a "
        f"{a['vocab_size']:,}-token BPE tokenizer, context {a['context']}, {params / 1e6:.1f}M parameters, trained on the "
        f"same stories; the only difference is causal=True for the autoregressive twin{shifted}."
    )


def _load_text_model(settings: Settings, name: str, causal: bool, problems: dict[str, str]) -> Any:
    """The checkpoint `name`, or (saying so loudly: log, `problems`, the pages' UNTRAINED banner) a freshly
    initialised model of the same class."""
    from models.text.model import load_text_model, untrained_text_model

    folder = settings.checkpoint_dir / name
    try:
        return load_text_model(folder)
    except Exception as error:  # missing folder, checksum mismatch, config mismatch: say so, run untrained
        log.warning("UNTRAINED: could not load %s (%s); serving a freshly initialised text model", folder, error)
        problems[name] = str(error)[:300]
        return untrained_text_model(causal=causal)


def _load_judge(settings: Settings, problems: dict[str, str]) -> Any:
    """The text judge, or None (loudly: log and `problems`): runs then finish without the judge's figures."""
    from models.text.judge import JUDGE_NAME, load_judge

    folder = settings.checkpoint_dir / JUDGE_NAME
    try:
        return load_judge(folder)
    except Exception as error:  # missing folder, checksum mismatch: say so, judge nothing
        log.warning("no text judge at %s (%s): text runs finish without quality figures", folder, error)
        problems[JUDGE_NAME] = f"{str(error)[:240]}: text runs finish without the judge's quality figures"
        return None


def _load_text(settings: Settings, problems: dict[str, str]) -> tuple[TextBackend, RaceBackend]:
    diffusion = _load_text_model(settings, "text-diffusion", causal=False, problems=problems)
    autoregressive = _load_text_model(settings, "text-ar", causal=True, problems=problems)
    judge = _load_judge(settings, problems)
    return RealText(diffusion, judge), RealRace(diffusion, autoregressive, judge)


def _load_image(settings: Settings, problems: dict[str, str]) -> RealImage:
    from models.image.model import load_classifier, load_image_model, untrained_image_model

    folder = settings.checkpoint_dir / "image-ddpm"
    classifier = settings.checkpoint_dir / "digit-classifier"
    if not classifier.exists():
        log.warning("no digit classifier at %s: the 'decided' meter is off", classifier)
        problems["digit-classifier"] = f"{classifier} is missing: the 'decided' meter is off"
    try:
        model = load_image_model(folder, classifier if classifier.exists() else None)
        model.meter = _load_meter(settings, problems)
        return RealImage(model)
    except Exception as error:
        log.warning("UNTRAINED: could not load %s (%s); serving a freshly initialised image model", folder, error)
        problems["image-ddpm"] = str(error)[:300]
    try:  # the digit classifier may be trained even when the image model is not: keep the meter honest
        return RealImage(untrained_image_model(classifier=load_classifier(classifier)))
    except Exception as error:
        log.warning("no digit classifier (%s): the 'decided' meter is off", error)
        problems["digit-classifier"] = str(error)[:300]
        return RealImage(untrained_image_model())


def _load_meter(settings: Settings, problems: dict[str, str]) -> Any:
    """The meter's own narrow classifier; without it (said on /readyz) the scoring classifier reads for it."""
    from models.image.model import load_classifier

    folder = settings.checkpoint_dir / "digit-meter"
    try:
        return load_classifier(folder)
    except Exception as error:  # missing, checksum mismatch: the meter still works, at the scoring classifier's cost
        log.warning("no meter classifier at %s (%s): the scoring classifier reads for the meter", folder, error)
        problems["digit-meter"] = f"{str(error)[:240]}: the scoring classifier reads for the meter (slower)"
        return None


def _load_pixel_ar(settings: Settings, problems: dict[str, str]) -> Any:
    """The image race's autoregressive model, or (loudly, as the others) a freshly initialised one."""
    from models.image.pixel_ar import load_pixel_ar, untrained_pixel_ar

    folder = settings.checkpoint_dir / "image-pixel-ar"
    try:
        return load_pixel_ar(folder)
    except Exception as error:  # missing folder, checksum mismatch, config mismatch: say so, run untrained
        log.warning("UNTRAINED: could not load %s (%s); serving a freshly initialised pixel model", folder, error)
        problems["image-pixel-ar"] = str(error)[:300]
        return untrained_pixel_ar()


def load_backends(settings: Settings) -> Backends:
    """Blocking: call it from a worker thread."""
    if settings.models == "fake":
        step = settings.fake_step_ms / 1000
        return Backends(text=FakeText(step), image=FakeImage(step), race=FakeRace(step), image_race=FakeImageRace(step))
    problems: dict[str, str] = {}
    text, race = _load_text(settings, problems)
    image = _load_image(settings, problems)
    image_race = RealImageRace(_load_pixel_ar(settings, problems), image.model)  # the DDPM loaded once, shared
    return Backends(text=text, image=image, race=race, problems=problems, image_race=image_race)
