"""The image race: the autoregressive PixelCNN paints a digit pixel by pixel (784 forward passes, each pixel
final once painted) while the DDPM refines every pixel at every step, on one clock, the forward pass.

A frame is emitted at every DDPM pass while it runs and at the end of every AR row (every 28 passes) after, so
the diffusion lane's refinement and the painter's rows both show. Each lane's wall time is measured around its
own work, so the lanes do not slow each other's count.

The forced mistake (`mistake`): the same wrong stroke (`MISTAKE_PIXELS`: 16 pixels at full ink in the upper
left, where real digits put 2-32% of full ink on average, depending on the class) is painted as given by the AR
lane when its raster reaches it, and written into the DDPM's state after the share of its steps that
`mistake_at` names (`MISTAKE_TIMINGS`) as if the model's own clean-image guess had it. The AR model can only
build on it; the DDPM can wash it out, the less the later it comes (docs/image-race-recovery.json measures how
often each still ends as the digit asked for, per timing)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch

from models.image.data import to_model_range
from models.image.model import ImageModel
from models.image.pixel_ar import PixelARModel, PixelFrame, sample_pixels
from models.image.race_frames import (
    AUTOREGRESSIVE,
    DIFFUSION,
    IMAGE_SIZE,
    MISTAKE_PIXELS,
    ImageLane,
    ImageRaceFrame,
    mistake_step,
    ticks,
)

# the frame types and clock live in the torch-free `race_frames`; importers of the race find them here too
__all__ = [
    "AUTOREGRESSIVE",
    "DIFFUSION",
    "IMAGE_SIZE",
    "MISTAKE_PIXELS",
    "ImageLane",
    "ImageRaceFrame",
    "mistake_step",
    "sample_image_race",
    "ticks",
]
from models.image.request import DEFAULT_MISTAKE_TIMING, ImageRaceRequest, ImageRequest, MistakeTiming
from models.image.sample import Meter, make_scheduler, sample_image

T = TypeVar("T")
Hook = Callable[[int, torch.Tensor, torch.Tensor, int], torch.Tensor]


def mistake_hook(model: ImageModel, steps: int, timing: MistakeTiming = DEFAULT_MISTAKE_TIMING) -> Hook:
    """Writes the stroke into x_t after step `mistake_step(steps, timing)`: x_t = sqrt(ab) x0 + sqrt(1 - ab) eps
    with the stroke's pixels at full ink in x0 and the model's own noise estimate, so the state reads as if the
    model's clean guess had drawn it. After the last step (t = -1, a one-step run) the state is the image: the
    stroke goes in at full ink."""
    at = mistake_step(steps, timing)
    alphas_cumprod = make_scheduler(model, "ddim").alphas_cumprod
    rows, columns = np.divmod(np.array(MISTAKE_PIXELS), IMAGE_SIZE)

    def hook(step: int, x: torch.Tensor, eps: torch.Tensor, t: int) -> torch.Tensor:
        if step != at:
            return x
        x = x.clone()
        if t < 0:
            x[:, 0, rows, columns] = 1.0
            return x
        ab = alphas_cumprod[t]
        x[:, 0, rows, columns] = ab.sqrt() * 1.0 + (1 - ab).sqrt() * eps[:, 0, rows, columns]
        return x

    return hook


def signal_at(model: ImageModel, steps: int, timing: MistakeTiming) -> tuple[int, float]:
    """(t, sqrt(alpha_bar_t)) of the state the stroke is written into: the timestep after `mistake_step` and the
    share of the clean image that state keeps (1.0 after the last step)."""
    scheduler = make_scheduler(model, "ddim")
    scheduler.set_timesteps(steps)
    at = mistake_step(steps, timing)
    if at >= steps:
        return -1, 1.0
    t = int(scheduler.timesteps[at])
    return t, float(scheduler.alphas_cumprod[t].sqrt())


def sample_image_race(
    pixel_model: PixelARModel,
    image_model: ImageModel,
    request: ImageRaceRequest,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[ImageRaceFrame]:
    meter = Meter(image_model.meter_classifier)
    levels_top = pixel_model.levels - 1
    forced = {p: levels_top for p in MISTAKE_PIXELS} if request.mistake else None
    painter = sample_pixels(pixel_model, request.digit, request.seed, should_stop, forced=forced)
    ddpm_request = ImageRequest(
        digit=request.digit, guidance=request.guidance, sampler="ddim", steps=request.steps, seed=request.seed
    )
    hook = mistake_hook(image_model, request.steps, request.mistake_at) if request.mistake else None
    denoiser = sample_image(image_model, ddpm_request, should_stop, intervene=hook)
    stroke_step = mistake_step(request.steps, request.mistake_at)
    total_ar = IMAGE_SIZE * IMAGE_SIZE - (len(MISTAKE_PIXELS) if request.mistake else 0)
    clock = ticks(request.steps, total_ar)
    wall = {AUTOREGRESSIVE: 0.0, DIFFUSION: 0.0}

    def timed(lane: str, step: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        value = step(*args)
        wall[lane] += (time.perf_counter() - started) * 1000
        return value

    def probabilities(image: np.ndarray) -> tuple[float, ...]:
        found = meter(torch.from_numpy(to_model_range(image[None])))
        return found[0] if found else ()

    painted: PixelFrame = timed(AUTOREGRESSIVE, next, painter)
    state = timed(DIFFUSION, next, denoiser)
    ar_probs: tuple[float, ...] = ()
    ddpm_probs: tuple[float, ...] = ()

    def frame(index: int, now: int) -> ImageRaceFrame:
        ar_forced = painted.forced
        ddpm_forced = MISTAKE_PIXELS if request.mistake and state.step >= stroke_step else ()
        return ImageRaceFrame(
            step=index,
            total=len(clock),
            clock=now,
            lanes=(
                ImageLane(AUTOREGRESSIVE, painted.pixels, None, painted.passes, total_ar, round(wall[AUTOREGRESSIVE], 1),
                          painted.painted if painted.painted < IMAGE_SIZE * IMAGE_SIZE else None, ar_probs, ar_forced),
                ImageLane(DIFFUSION, state.xt[0], state.x0[0] if state.step else None, state.forward_passes, request.steps,
                          round(wall[DIFFUSION], 1), None, ddpm_probs, ddpm_forced),
            ),
        )  # fmt: skip

    yield frame(0, 0)
    for index, now in enumerate(clock, start=1):
        if should_stop and should_stop():
            return
        before = painted
        # the AR lane paints up to this tick (forced pixels take no pass: the loop paints them on the way)
        while painted.painted < IMAGE_SIZE * IMAGE_SIZE and (painted.passes < now or _next_is_forced(painted, forced)):
            painted = timed(AUTOREGRESSIVE, next, painter)
        if painted is not before:  # the classifier's verdict on the canvas so far (counted in the lane's time)
            ar_probs = timed(AUTOREGRESSIVE, probabilities, painted.pixels)
        while state.forward_passes < min(now, request.steps):
            state = timed(DIFFUSION, next, denoiser)
            ddpm_probs = state.digit_probabilities[0] if state.digit_probabilities else ()
        yield frame(index, now)


def _next_is_forced(painted: PixelFrame, forced: dict[int, int] | None) -> bool:
    return bool(forced) and painted.painted in forced  # type: ignore[operator]
