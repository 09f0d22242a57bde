"""Tiny deterministic stand-ins for the models: they yield real `TextFrame`s, `ImageFrame`s, `RaceFrame`s and
`ImageRaceFrame`s.

Used by the tests, by `THEATER_MODELS=fake`, and by the benchmarks of the web layer alone. Each step
sleeps `step_seconds` (checking `should_stop` first), so tests can see frames arrive before the last
step is computed and see a job stop within one step when its client leaves.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from app.backends.fake_text import WORDS, FakeAutoregressive, FakeRace, FakeText  # the text stand-ins
from app.engine.interface import Refused
from models.frames import ImageFrame
from models.image import race_frames as image_race
from models.image.data import held_out_digit
from models.image.masks import decode_mask
from models.image.request import ImageRaceRequest, ImageRequest, lab_problem

__all__ = ["WORDS", "FakeAutoregressive", "FakeImage", "FakeImageRace", "FakeRace", "FakeText", "cosine_noise_schedule"]


def cosine_noise_schedule(steps: int = 1000) -> np.ndarray:
    """sqrt(1 - alpha_bar_t) of the cosine schedule (Nichol & Dhariwal), t = 0..steps-1."""
    t = (np.arange(steps) + 1) / steps
    alpha_bar = np.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    return np.sqrt(np.clip(1 - alpha_bar, 0.0, 1.0)).astype(np.float64)


class FakeImage:
    """DDPM look-alike: a seeded blob shaped by the digit emerges from seeded noise along a cosine schedule.
    With `request.batch` (the grid) it draws that many blobs, each from noise of its own; its made-up classifier
    reads every eighth one as the next digit, so a grid's count of matches is not trivially all of them."""

    name = "fake-image"
    trained = False
    description = "fake image model (for tests): a seeded blob fading in from noise"

    def __init__(self, step_seconds: float = 0.0) -> None:
        self.step_seconds = step_seconds
        self.calls = 0
        self.steps_run = 0
        self._lock = threading.Lock()
        self._schedule = cosine_noise_schedule()

    def noise_schedule(self) -> np.ndarray:
        return self._schedule

    def sample(self, request: ImageRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[ImageFrame]:
        with self._lock:
            self.calls += 1
        blobs = [self._blob(request, index) for index in range(request.batch)]
        steps = request.steps
        reference, keep, start = self._lab(request)
        if reference is not None:  # the lab: the blob over the real digit; with a mask, the kept pixels exactly
            original = reference.astype(np.float64) / 127.5 - 1
            blobs = [(np.maximum(c, original) if keep is None else np.where(keep, original, c), n) for c, n in blobs]
        timesteps = np.linspace(start, 0, steps + 1).round().astype(int)
        for step in range(steps + 1):
            if step > 0:
                if should_stop is not None and should_stop():
                    return
                if self.step_seconds:
                    time.sleep(self.step_seconds)
                with self._lock:
                    self.steps_run += 1
            t = int(timesteps[step])
            sigma = float(self._schedule[t]) if step < steps else 0.0
            sure = 1 - sigma  # a made-up classifier that grows surer as the noise goes
            wanted = request.digit if request.digit is not None else 0
            reads = [(wanted + 1) % 10 if index % 8 == 7 else wanted for index in range(request.batch)]
            yield ImageFrame(
                step=step,
                total=steps,
                timestep=t,
                xt=np.stack([_to_uint8(math.sqrt(1 - sigma**2) * clean + sigma * noise) for clean, noise in blobs]),
                x0=np.stack([_to_uint8(clean * (1 - sigma) + noise * sigma * 0.3) for clean, noise in blobs]),
                noise_level=sigma,
                reference=reference,
                keep=keep,
                forward_passes=step,
                digit_probabilities=tuple(
                    tuple(round(sure if d == read else (1 - sure) / 9, 4) for d in range(10)) for read in reads
                ),
            )

    @staticmethod
    def _lab(request: ImageRequest) -> tuple[np.ndarray | None, np.ndarray | None, int]:
        """(the held-out digit, the kept pixels, the first timestep) of an image-lab request, as the real sampler
        reads them (the committed test digits; the mask's wire form)."""
        problem = lab_problem(request)
        if problem:
            raise Refused(problem[1])
        if request.source is None:
            return None, None, 999
        reference, _label = held_out_digit(request.source)
        keep = None if request.mask is None else ~decode_mask(request.mask)
        return reference, keep, request.start_t or 999

    @staticmethod
    def _blob(request: ImageRequest, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The clean blob and the noise of image `index` of the batch (image 0: the single run's own)."""
        rng = np.random.default_rng(request.seed if index == 0 else (request.seed, index))
        yy, xx = np.mgrid[0:28, 0:28]
        angle = (request.digit if request.digit is not None else rng.integers(0, 10)) * math.pi / 5 + index * 0.4
        cx, cy = 14 + 6 * math.cos(angle), 14 + 6 * math.sin(angle)
        clean = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 30.0) * 2 - 1  # in [-1, 1]
        return clean, rng.standard_normal((28, 28))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8)


class FakeImageRace:
    """The image race's look-alike on the real clock (`models.image.race.ticks`): the autoregressive lane paints
    a seeded blob pixel by pixel in raster order (one pass a pixel, forced pixels free), the diffusion lane fades
    it in from noise over `steps` passes. With `mistake` the stroke is painted into both lanes as the real race
    does; the fake DDPM washes it out again, the fake painter ends as the wrong digit (both done sentences).
    Wall times are counted, not measured (0.5 ms a pixel, 10 ms a DDPM pass), so runs are deterministic."""

    name = "fake-image-race"
    trained = False
    facts = "Fake lanes for tests: a blob painted pixel by pixel against the same blob fading in from noise."
    AR_MS, DDPM_MS = 0.5, 10.0

    def __init__(self, step_seconds: float = 0.0) -> None:
        self.step_seconds = step_seconds
        self.untrained = ["fake-image", "fake-pixel-ar"]
        self.calls = 0

    def sample(
        self, request: ImageRaceRequest, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[image_race.ImageRaceFrame]:
        self.calls += 1
        size = 28
        rng = np.random.default_rng(request.seed)
        yy, xx = np.mgrid[0:size, 0:size]
        angle = request.digit * math.pi / 5
        cx, cy = 14 + 6 * math.cos(angle), 14 + 6 * math.sin(angle)
        clean = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 30.0) * 2 - 1  # in [-1, 1]
        painted_final = (np.round((clean + 1) / 2 * 3) / 3 * 255).astype(np.uint8).ravel()  # 4 levels, as the PixelCNN
        noise = rng.standard_normal((size, size))
        forced = set(image_race.MISTAKE_PIXELS) if request.mistake else set()
        if forced:
            painted_final[list(forced)] = 255
        total_ar = size * size - len(forced)
        steps = request.steps
        at = image_race.mistake_step(steps, request.mistake_at)
        clock = image_race.ticks(steps, total_ar)
        wrong = (request.digit + 1) % 10

        def verdict(digit: int, sure: float) -> tuple[float, ...]:
            return tuple(round(sure if d == digit else (1 - sure) / 9, 4) for d in range(10))

        def ar_lane(passes: int) -> image_race.ImageLane:
            painted = 0  # pixels decided after `passes` sampled ones: forced pixels on the way take no pass
            while painted < size * size and (painted - sum(1 for p in forced if p < painted) < passes or painted in forced):
                painted += 1
            canvas = np.zeros(size * size, dtype=np.uint8)
            canvas[:painted] = painted_final[:painted]
            share = painted / (size * size)
            digit = wrong if forced and share > 0.5 else request.digit
            return image_race.ImageLane(
                image_race.AUTOREGRESSIVE,
                canvas.reshape(size, size),
                None,
                passes,
                total_ar,
                round(passes * self.AR_MS, 1),
                painted if painted < size * size else None,
                verdict(digit, 0.1 + 0.85 * share) if passes else (),
                tuple(sorted(p for p in forced if p < painted)),
            )

        def ddpm_lane(passes: int) -> image_race.ImageLane:
            sigma = 1 - passes / steps
            xt, guess = math.sqrt(1 - sigma**2) * clean + sigma * noise, clean * (1 - sigma) + noise * sigma * 0.3
            stroke = forced and passes >= at
            if stroke:  # written in at the mistake step, then washed out by the steps after it
                ink = 1 - 2 * (passes - at) / max(steps - at, 1)
                for image in (xt, guess):
                    image.reshape(-1)[list(forced)] = np.maximum(image.reshape(-1)[list(forced)], ink)
            return image_race.ImageLane(
                image_race.DIFFUSION,
                _to_uint8(xt),
                _to_uint8(guess) if passes else None,
                passes,
                steps,
                round(passes * self.DDPM_MS, 1),
                None,
                verdict(request.digit, 0.1 + 0.85 * (1 - sigma)) if passes else (),
                tuple(image_race.MISTAKE_PIXELS) if stroke else (),
            )

        yield image_race.ImageRaceFrame(0, len(clock), 0, (ar_lane(0), ddpm_lane(0)))
        for index, now in enumerate(clock, start=1):
            if should_stop is not None and should_stop():
                return
            if self.step_seconds:
                time.sleep(self.step_seconds)
            yield image_race.ImageRaceFrame(index, len(clock), now, (ar_lane(min(now, total_ar)), ddpm_lane(min(now, steps))))
