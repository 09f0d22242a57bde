"""Loading the backends, once, in the app's lifespan (in a worker thread: torch is imported only then). A checkpoint
that does not load is served untrained, loudly (log, `/readyz`, the pages' banner); `models=fake` loads the test
doubles (`app.backends.fakes`), imported only then."""

from __future__ import annotations

import logging
from typing import Any

from app.backends.interface import Backends, RaceBackend, TextBackend
from app.backends.real import RealImage, RealImageRace, RealRace, RealText
from app.settings import Settings

log = logging.getLogger("theater.models")


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
        from app.backends.fakes import FakeImage, FakeImageRace, FakeRace, FakeText

        step = settings.fake_step_ms / 1000
        return Backends(text=FakeText(step), image=FakeImage(step), race=FakeRace(step), image_race=FakeImageRace(step))
    problems: dict[str, str] = {}
    text, race = _load_text(settings, problems)
    image = _load_image(settings, problems)
    image_race = RealImageRace(_load_pixel_ar(settings, problems), image.model)  # the DDPM loaded once, shared
    return Backends(text=text, image=image, race=race, problems=problems, image_race=image_race)
