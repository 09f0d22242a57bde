"""Samplers side by side: DDPM, DDIM and DPM-Solver++ on the same DDPM, digit, seed and guidance, each with its own
step count, interleaved on one clock: the fraction of the run.

Frame k of K (K: the most steps any lane takes) shows each lane at the step nearest k/K of its own run, so all
lanes start and finish together and a lane with fewer steps holds its state between its steps. Every lane runs
through the same `sample` function the image page uses (`models.image.sample.sample_image`, or a stand-in), and
its wall time is measured around its own steps only (the meter's classifier included, as on the image page), so
the lanes do not slow each other's count. Torch-free: it only drives the samplers' generators.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from models.frames import ImageFrame
from models.image.request import ImageRequest, ImageSamplersRequest, Sampler

LANES: tuple[Sampler, ...] = ("ddpm", "ddim", "dpm")  # the page's order: most steps first
ShouldStop = Callable[[], bool]
Sample = Callable[[ImageRequest, ShouldStop | None], Iterator[ImageFrame]]


@dataclass(frozen=True)
class SamplerLane:
    name: Sampler
    step: int  # this lane's own step, 0 = its initial noise
    total: int  # this lane's steps
    xt: np.ndarray = field(repr=False)  # uint8 (H, W): the noisy state
    x0: np.ndarray | None = field(repr=False)  # uint8 (H, W): the predicted clean image (None before step 1)
    passes: int
    wall_ms: float  # this lane's sampler time so far, measured
    digit_probabilities: tuple[float, ...]  # the classifier on x0 (() at step 0 or without a classifier)

    @property
    def finished(self) -> bool:
        return self.step >= self.total


@dataclass(frozen=True)
class SamplersFrame:
    step: int  # k: the frame on the shared clock, 0 = every lane's initial noise
    total: int  # K: the most steps of any lane
    lanes: tuple[SamplerLane, ...]


def lane_steps(request: ImageSamplersRequest) -> dict[Sampler, int]:
    return {"ddpm": request.ddpm_steps, "ddim": request.ddim_steps, "dpm": request.dpm_steps}


def lane_requests(request: ImageSamplersRequest) -> dict[Sampler, ImageRequest]:
    """Each lane's image request: everything shared but the sampler and its steps."""
    shared = {"digit": request.digit, "guidance": request.guidance, "seed": request.seed}
    return {name: ImageRequest(sampler=name, steps=steps, **shared) for name, steps in lane_steps(request).items()}


def clock_total(request: ImageSamplersRequest) -> int:
    return max(lane_steps(request).values())


def lane_step(k: int, steps: int, total: int) -> int:
    """The lane step nearest k/total of `steps` (halves round up), in integers so that k = total gives `steps`
    exactly; never decreasing in k, and at most one step a frame as long as steps <= total."""
    return (2 * k * steps + total) // (2 * total)


def race_samplers(
    sample: Sample, request: ImageSamplersRequest, should_stop: ShouldStop | None = None
) -> Iterator[SamplersFrame]:
    requests = lane_requests(request)
    runs = {name: sample(lane_request, should_stop) for name, lane_request in requests.items()}
    wall = dict.fromkeys(LANES, 0.0)

    def advance(name: Sampler) -> ImageFrame | None:
        started = time.perf_counter()
        found = next(runs[name], None)
        wall[name] += (time.perf_counter() - started) * 1000
        return found

    state: dict[Sampler, ImageFrame] = {}
    for name in LANES:  # the initial noise of each lane (its step 0), counted in the lane's time
        first = advance(name)
        if first is None:
            return
        state[name] = first
    total = clock_total(request)

    def frame(k: int) -> SamplersFrame:
        return SamplersFrame(k, total, tuple(_lane(name, state[name], wall[name]) for name in LANES))

    yield frame(0)
    for k in range(1, total + 1):
        if should_stop and should_stop():
            return
        for name in LANES:
            target = lane_step(k, requests[name].steps, total)
            while state[name].step < target:
                following = advance(name)
                if following is None:  # the sampler stopped early (should_stop)
                    return
                state[name] = following
        yield frame(k)


def _lane(name: Sampler, frame: ImageFrame, wall_ms: float) -> SamplerLane:
    probabilities = frame.digit_probabilities[0] if frame.digit_probabilities else ()
    x0 = frame.x0[0] if frame.step > 0 else None
    return SamplerLane(name, frame.step, frame.total, frame.xt[0], x0, frame.forward_passes, round(wall_ms, 1), probabilities)
