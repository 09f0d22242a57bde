"""The real backends: each wraps a loaded model behind `sample(request, should_stop) -> Iterator[frame]`. They call
`models.text.sample` / `models.image.sample` / the races (`models.text.race`, `models.image.race`), passing the
request as it is (the protocol's request types are the samplers'); `app.backends.fakes` provides stand-ins. Models load
once, in the app's lifespan, in a worker thread (`app.backends.load`), never at import time and never on the event
loop; torch is imported only then. The image race shares the image backend's loaded DDPM; the grid and the
samplers side by side need no backend of their own: they run the image backend's `sample` (with `batch` set, or
three of it interleaved; `app.demos.producers`).
The context and race checks are the models' own rules (`models.text.decoding`, `models.text.race`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from app.backends.interface import ShouldStop
from app.engine.interface import Refused
from models.frames import ImageFrame, TextFrame, TextToken
from models.image.race_frames import ImageRaceFrame
from models.image.request import ImageRaceRequest, ImageRequest
from models.requests import SamplingError
from models.text.decoding import RaceRequest, TextRequest
from models.text.race import AUTOREGRESSIVE, DIFFUSION, RaceFrame, sample_race


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
            if request.is_rework:  # judged inside, every text over the same span
                yield from self._rework(request, should_stop)
                return
            frames = sample_diffusion(self.model, request, should_stop=should_stop)
            if self.judge is None:
                yield from frames
                return
            yield from judged(frames, self.judge, self.model, self._without_remasking(request))
        except SamplingError as error:  # the sampler's refusal is the client's error, not a fault
            raise Refused(str(error)) from error

    def _rework(self, request: TextRequest, should_stop: ShouldStop | None) -> Iterator[TextFrame]:
        """The base run, then the edit reworked (`models.text.rework`); the judge reads the old text too."""
        from models.text.rework import rework_frames
        from models.text.sample import sample_diffusion

        def sample(r: TextRequest, stop: ShouldStop | None) -> Iterator[TextFrame]:
            return sample_diffusion(self.model, r, should_stop=stop)

        decode, judge = _decoder(self.model), _text_judge(self.judge)
        return rework_frames(sample, decode, self.count_tokens, self.context, request, should_stop, judge)

    def _without_remasking(self, request: TextRequest) -> Callable[[], TextFrame] | None:
        """With remasking: the same request and seed without it, one token a pass (more steps than tokens commit
        one a step either way), whose judged text the done summary sets before this run's (before -> after)."""
        if request.remask == "none" or request.is_rework:
            return None
        from models.text.sample import sample_diffusion

        plain = request.model_copy(update={"remask": "none", "steps": min(request.steps, sum(request.gap_sizes))})

        def draw() -> TextFrame:
            *_, last = sample_diffusion(self.model, plain)
            return last

        return draw


def _decoder(model: Any) -> Callable[[list[TextToken]], str]:
    """Decided tokens -> their text, decoded from their ids at once (a character split across pieces comes out
    whole), as `models.text.rework` asks for it."""
    return lambda tokens: str(model.tokenizer.decode([t.token_id for t in tokens], skip_special_tokens=False))


def _text_judge(judge: Any) -> Callable[[str, str], Any] | None:
    """The judge over (given text, written text), as `models.text.rework` asks for it."""
    if judge is None:
        return None
    from models.text.judge import Segment

    return lambda given, written: judge.score([Segment(given, False), Segment(written, True)])


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

        try:  # `batch` is the grid's (app.demos.producers sets it); from noise or a held-out digit
            yield from image_sample.sample_request(self.model, request, should_stop=should_stop)
        except SamplingError as error:
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
            if request.is_rework:  # judged inside, every text over the same span
                yield from self._rework(request, should_stop)
                return
            races = sample_race(self.diffusion, self.autoregressive, request, should_stop=should_stop)
            if self.judge is None:
                yield from races
                return
            models = {DIFFUSION: self.diffusion, AUTOREGRESSIVE: self.autoregressive}
            yield from judged_race(races, self.judge, models)
        except SamplingError as error:
            raise Refused(str(error)) from error

    def _rework(self, request: RaceRequest, should_stop: ShouldStop | None) -> Iterator[RaceFrame]:
        """The same edit in both lanes, from the diffusion model's base run (`models.text.rework.rework_race`)."""
        from models.text.rework import rework_race
        from models.text.sample import count_tokens, sample_autoregressive, sample_diffusion

        def diffusion(r: TextRequest, stop: ShouldStop | None) -> Iterator[TextFrame]:
            return sample_diffusion(self.diffusion, r, should_stop=stop)

        def autoregressive(r: TextRequest, stop: ShouldStop | None) -> Iterator[TextFrame]:
            return sample_autoregressive(self.autoregressive, r, stop)

        def count(text: str) -> int:
            return count_tokens(self.diffusion, text)

        context = int(self.diffusion.context)
        judge = _text_judge(self.judge)
        return rework_race(diffusion, autoregressive, _decoder(self.diffusion), count, context, request, should_stop, judge)


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

        try:
            yield from sample_image_race(self.pixel, self.image, request, should_stop=should_stop)
        except SamplingError as error:
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
