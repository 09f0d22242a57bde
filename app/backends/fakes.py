"""Tiny deterministic stand-ins for the models: they yield real `TextFrame`s, `ImageFrame`s, `RaceFrame`s and
`ImageRaceFrame`s.

Used by the tests, by `THEATER_MODELS=fake`, and by the benchmarks of the web layer alone. Each step
sleeps `step_seconds` (checking `should_stop` first), so tests can see frames arrive before the last
step is computed and see a job stop within one step when its client leaves.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from app.engine.interface import Refused
from models.frames import BLANK, COMMITTED, FIXED, NEW, REMASKED, ImageFrame, TextFrame, TextToken, TokenAlternative
from models.image import race_frames as image_race
from models.image.data import held_out_digit
from models.image.masks import decode_mask
from models.image.request import ImageRaceRequest, ImageRequest, lab_problem
from models.requests import SamplingError
from models.text.decoding import RaceRequest, TextRequest, canvas_gaps, context_problem
from models.text.race import AUTOREGRESSIVE, DIFFUSION, LaneSpec, RaceFrame, autoregressive_request, race_frames
from models.text.rework import rework_frames, rework_race

WORDS = (
    " the",
    " cat",
    " sat",
    " on",
    " a",
    " mat",
    " and",
    " dog",
    " ran",
    " to",
    " park",
    " with",
    " her",
    " friend",
    " Lily",
    " saw",
    " big",
    " red",
    " ball",
    ".",
    ",",
    " happy",
    " day",
    " they",
    " played",
)


def cosine_noise_schedule(steps: int = 1000) -> np.ndarray:
    """sqrt(1 - alpha_bar_t) of the cosine schedule (Nichol & Dhariwal), t = 0..steps-1."""
    t = (np.arange(steps) + 1) / steps
    alpha_bar = np.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    return np.sqrt(np.clip(1 - alpha_bar, 0.0, 1.0)).astype(np.float64)


class FakeText:
    """Masked-diffusion look-alike: prompt words fixed, blanks committed a few per step in a seeded order."""

    name = "fake-text"
    trained = False
    description = "fake text model (for tests): random words in a seeded order"

    def __init__(self, step_seconds: float = 0.0, context: int = 256) -> None:
        self.step_seconds = step_seconds
        self.context = context  # like the real model: prompt words + blanks must fit, else the sampler refuses
        self.calls = 0  # samplers started (tests count compute with this)
        self.steps_run = 0  # steps computed across all calls
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(_split(text))

    def sample(self, request: TextRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[TextFrame]:
        if request.is_rework:  # the base run, then the edit: through the real rework code
            try:
                yield from rework_frames(self._plain, _decode, self.count_tokens, self.context, request, should_stop)
            except SamplingError as error:
                raise Refused(str(error)) from error
            return
        yield from self._plain(request, should_stop)

    def _plain(self, request: TextRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[TextFrame]:
        with self._lock:
            self.calls += 1
        problem = context_problem(request, self.context, self.count_tokens)
        if problem:  # as models.text.sample.SamplingError, translated by app.backends.real
            raise Refused(problem)
        rng = random.Random(request.seed)
        # The canvas as the real sampler lays it out: each piece of fixed text, then its gap's blanks
        texts, sizes = canvas_gaps(request.prompt, request.length)
        layout: list[TextToken | None] = []  # None: a blank
        for index, text in enumerate(texts):
            if index:
                layout += [None] * sizes[index - 1]
            layout += [TextToken(FIXED, len(layout) + i, piece, 1.0) for i, piece in enumerate(_split(text))]
        slots = [position for position, token in enumerate(layout) if token is None]  # blank k is at slots[k]
        n, steps = len(slots), request.steps
        words = [rng.choice(WORDS) for _ in range(n)]
        order = list(range(n))
        rng.shuffle(order)
        current: list[TextToken] = [TextToken(BLANK, None, "", 0.0, guess=rng.choice(WORDS)) for _ in range(n)]

        def canvas(blanks: list[TextToken]) -> tuple[TextToken, ...]:
            filled = iter(blanks)
            return tuple(token if token is not None else next(filled) for token in layout)

        passes = 0
        yield TextFrame(0, steps, canvas(current), passes)
        done = 0
        for step in range(1, steps + 1):
            if should_stop is not None and should_stop():
                return
            if self.step_seconds:
                time.sleep(self.step_seconds)
            with self._lock:
                self.steps_run += 1
            passes += 1
            target = math.ceil(n * step / steps)
            committed = order[done:target]
            done = target
            remasked: list[int] = []
            state = [t if t.state not in (NEW, REMASKED) else _settle(t) for t in current]
            for pos in committed:
                conf = round(rng.uniform(0.2, 1.0), 3)
                alts = (TokenAlternative(words[pos], conf), TokenAlternative(rng.choice(WORDS), round(1 - conf, 3)))
                state[pos] = TextToken(NEW, 1000 + pos, words[pos], conf, alternatives=alts, committed_at=step)
            if request.remask != "none" and step < steps and done > len(committed) and rng.random() < 0.5:
                pos = order[rng.randrange(0, done - len(committed))]
                old = state[pos]
                state[pos] = TextToken(REMASKED, None, "", 0.0, guess=old.text, remask_count=old.remask_count + 1, was=old.text)
                remasked.append(pos)
                order.remove(pos)
                order.insert(done - 1, pos)
                done -= 1
            for pos in range(n):
                if state[pos].state == BLANK:
                    old = state[pos]
                    state[pos] = TextToken(
                        BLANK, None, "", 0.0, guess=rng.choice(WORDS), remask_count=old.remask_count, was=old.was
                    )
            if step == steps:  # the last frame has no blanks
                for pos in range(n):
                    if state[pos].state in (BLANK, REMASKED):
                        state[pos] = TextToken(NEW, 1000 + pos, words[pos], 0.5, committed_at=step)
                        committed.append(pos)
            current = state
            yield TextFrame(
                step,
                steps,
                canvas(current),
                passes,
                committed=tuple(slots[p] for p in committed),  # canvas positions, as the real sampler
                remasked=tuple(slots[p] for p in remasked),
            )


class FakeAutoregressive:
    """Left-to-right look-alike: one word a step from the first blank on (the race's second lane)."""

    name = "fake-text-ar"
    trained = False

    def __init__(self, step_seconds: float = 0.0) -> None:
        self.step_seconds = step_seconds
        self.prompts: list[str] = []  # every prompt it was given (tests check what the AR lane could read)

    def sample(self, request: TextRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[TextFrame]:
        self.prompts.append(request.prompt)
        rng = random.Random(request.seed + 1)
        prompt = [TextToken(FIXED, i, piece, 1.0) for i, piece in enumerate(_split(request.prompt))]
        tokens: list[TextToken] = [TextToken(BLANK, None, "", 0.0) for _ in range(request.length)]
        yield TextFrame(0, request.length, tuple(prompt + tokens), 0, model="ar")
        for step in range(1, request.length + 1):
            if should_stop is not None and should_stop():
                return
            if self.step_seconds:
                time.sleep(self.step_seconds / 4)  # cheaper passes than the diffusion fake, as with a KV cache
            tokens = [_settle(t) if t.state == NEW else t for t in tokens]
            tokens[step - 1] = TextToken(NEW, 2000 + step, rng.choice(WORDS), round(rng.uniform(0.2, 1.0), 3), committed_at=step)
            yield TextFrame(step, request.length, tuple(prompt + tokens), step, committed=(len(prompt) + step - 1,), model="ar")


class FakeRace:
    """The race over the two fakes, through the real clock of `models.text.race`."""

    name = "fake-race"
    trained = False
    facts = "Fake lanes for tests: the diffusion lane commits several words a pass, the other one a pass."

    def __init__(self, step_seconds: float = 0.0) -> None:
        self.diffusion = FakeText(step_seconds)
        self.autoregressive = FakeAutoregressive(step_seconds)
        self.untrained = [self.diffusion.name, self.autoregressive.name]

    def sample(self, request: RaceRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[RaceFrame]:
        if request.is_rework:  # through the real rework code, as the real race
            diffusion, context = self.diffusion, self.diffusion.context
            try:
                yield from rework_race(
                    diffusion._plain, self.autoregressive.sample, _decode, diffusion.count_tokens, context, request, should_stop
                )
            except SamplingError as error:
                raise Refused(str(error)) from error
            return
        ar_request, unseen = autoregressive_request(request)  # as sample_race
        yield from race_frames(
            [
                LaneSpec(DIFFUSION, self.diffusion.sample(request, should_stop)),
                LaneSpec(AUTOREGRESSIVE, self.autoregressive.sample(ar_request, should_stop), unseen=unseen),
            ],
            should_stop,
        )


def _settle(token: TextToken) -> TextToken:
    if token.state == NEW:
        return TextToken(
            COMMITTED,
            token.token_id,
            token.text,
            token.confidence,
            "",
            token.alternatives,
            token.committed_at,
            token.remask_count,
        )
    return TextToken(BLANK, None, "", 0.0, token.guess, (), None, token.remask_count, token.was)


def _decode(tokens: list[TextToken]) -> str:
    return "".join(token.text for token in tokens)


def _split(prompt: str) -> list[str]:
    pieces: list[str] = []
    for i, word in enumerate(prompt.split(" ")):
        if word:
            pieces.append(word if i == 0 else " " + word)
    return pieces


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
