"""The race: the diffusion model and its autoregressive twin on one prompt, advanced on one shared clock.

The clock is the forward pass. At every tick each unfinished lane runs one step (one forward pass): the
autoregressive lane commits one token, the diffusion lane as many as its schedule says (with 16 steps
for 64 tokens, four). Each lane's compute time is measured around its own steps, so the race reports
both counts honestly: passes (where diffusion wins by design) and wall time (where, on a CPU, a pass over
the whole canvas costs more than a cached pass over one new token).

Infill: with one `___` gap in the prompt (bare: `length` blanks; sized, `___{8}`: 8), the diffusion lane fills
the gap reading both sides; the autoregressive lane is given only the text before the gap (it cannot read
ahead) and writes as many tokens; what it never read is reported as the lane's `unseen` text.

Everything here but `sample_race` is torch-free (the clock, the lanes, the gap rule): the web layer renders
race frames and the fakes race on this clock without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from time import perf_counter
from typing import TYPE_CHECKING

from models.frames import TextFrame
from models.requests import SamplingError
from models.text.decoding import INFILL_MARK, TextRequest, canvas_texts

if TYPE_CHECKING:
    from models.text.model import TextModel

DIFFUSION = "diffusion"
AUTOREGRESSIVE = "ar"


@dataclass(frozen=True)
class Lane:
    name: str  # DIFFUSION or AUTOREGRESSIVE
    frame: TextFrame  # the lane's latest frame (a finished lane keeps its last one)
    wall_ms: float  # the lane's own compute time so far
    finished: bool
    unseen: str = ""  # text of the prompt this lane's model never read (the AR lane of an infill race)

    @property
    def ms_per_pass(self) -> float:
        return self.wall_ms / self.frame.forward_passes if self.frame.forward_passes else 0.0


@dataclass(frozen=True)
class RaceFrame:
    step: int  # the shared clock: forward passes since the start (0: both canvases blank)
    total: int  # ticks until the slower lane finishes
    lanes: tuple[Lane, ...]


@dataclass(frozen=True)
class LaneSpec:
    name: str
    frames: Iterator[TextFrame]
    unseen: str = ""


def race_frames(specs: Sequence[LaneSpec], should_stop: Callable[[], bool] | None = None) -> Iterator[RaceFrame]:
    """Interleave lanes one step each per tick; every lane's first frame (its blank canvas) is tick 0."""
    lanes: list[Lane] = []
    for spec in specs:
        first = next(spec.frames)
        lanes.append(Lane(spec.name, first, 0.0, first.step >= first.total, spec.unseen))  # no pass yet
    total = max(lane.frame.total for lane in lanes)
    yield RaceFrame(0, total, tuple(lanes))
    for tick in range(1, total + 1):
        if should_stop and should_stop():
            return
        for index, (spec, lane) in enumerate(zip(specs, lanes)):
            if lane.finished:
                continue
            started = perf_counter()
            frame = next(spec.frames, None)
            elapsed = (perf_counter() - started) * 1000
            if frame is None:  # the sampler stopped early (asked to stop): end the race
                return
            lanes[index] = replace(lane, frame=frame, wall_ms=lane.wall_ms + elapsed, finished=frame.step >= frame.total)
        yield RaceFrame(tick, total, tuple(lanes))


def race_problem(prompt: str) -> str | None:
    """The race fills at most one gap, and needs text before it (the AR lane starts from that text)."""
    marks = prompt.count(INFILL_MARK)
    if marks > 1:
        return f"the race fills one gap: the prompt has {marks} '{INFILL_MARK}' marks; keep one"
    if marks == 1 and not prompt.split(INFILL_MARK)[0].strip():
        return "the infill race needs text before the gap: the left-to-right model starts from it"
    return None


def split_gap(prompt: str) -> tuple[str, str] | None:
    """(before, after) around the one `___` (or `___{n}`: the size is not text) of an infill race; None without
    a gap."""
    problem = race_problem(prompt)
    if problem:
        raise SamplingError(problem)
    if INFILL_MARK not in prompt:
        return None
    before, after = canvas_texts(prompt)
    return before, after


def autoregressive_request(request: TextRequest) -> tuple[TextRequest, str]:
    """The AR lane's request and what it never reads: the request itself, or, in an infill race, the text before
    the gap with `length` set to the gap's blanks (it writes as many tokens as the diffusion lane fills), and the
    text after the gap."""
    gap = split_gap(request.prompt)
    if gap is None:
        return request, ""
    return request.model_copy(update={"prompt": gap[0], "length": request.gap_sizes[0]}), gap[1]


def sample_race(
    diffusion: TextModel,
    autoregressive: TextModel,
    request: TextRequest,
    should_stop: Callable[[], bool] | None = None,
    use_cache: bool = True,
) -> Iterator[RaceFrame]:
    """The diffusion lane runs `request` as it is; the AR lane the same prompt (only the text before the gap,
    in an infill race), length (the gap's), temperature and seed."""
    # The samplers need torch: imported here, when a race of real models starts, so the clock above stays torch-free.
    from models.text.sample import sample_autoregressive, sample_diffusion

    ar_request, unseen = autoregressive_request(request)
    specs = [
        LaneSpec(DIFFUSION, sample_diffusion(diffusion, request, should_stop)),
        LaneSpec(AUTOREGRESSIVE, sample_autoregressive(autoregressive, ar_request, should_stop, use_cache=use_cache), unseen),
    ]
    yield from race_frames(specs, should_stop)
