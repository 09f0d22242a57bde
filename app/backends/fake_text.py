"""The text stand-ins (`app.backends.fakes` re-exports them): a masked-diffusion look-alike that lays out prompts and
infill gaps as the real sampler does and reworks through `models.text.rework`, a left-to-right look-alike, and the
race over both on the real clock. Deterministic per seed; each step sleeps `step_seconds` (checking `should_stop`
first)."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator

from app.engine.interface import Refused
from models.frames import BLANK, COMMITTED, FIXED, NEW, REMASKED, TextFrame, TextToken, TokenAlternative
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
