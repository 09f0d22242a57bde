"""What the routes, the export, the prewarm and the worker need from an engine: the in-process one
(`app.engine.local`) or the Redis one (`app.engine.redis_replica`, when THEATER_REDIS_URL is set). Both satisfy `Runs`.

    subscription = engine.run(kind, request, html=True)   # Busy, ShuttingDown
    with subscription:
        async for event in subscription.events():       # Queued | Rendered | Failed (Unavailable: try later)
            ...

A run is named by its kind and request (`run_key`: seeded sampling is deterministic, so the key names a
trajectory). The in-process engine builds the run's producer itself (from the `ProducerFactory` it was given:
the demo registry over the loaded backends); the Redis engine enqueues the kind and request for a worker, which
does the same. The in-process engine decides admission inside `run` (raising Busy); the Redis engine decides it
once Redis answers, so a run it cannot take arrives as an `Unavailable` event before any message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, Self

from pydantic import BaseModel

from app.render.message import Deferred, Rendered

# A producer yields each message either ready (`Rendered`) or as a zero-argument callable that renders it
# (`Deferred`): callables run in the render thread, so the sampler thread goes straight on to the next step.
Producer = Callable[[Callable[[], bool]], Iterator[Rendered | Deferred]]
# (kind, request) -> the run's producer: the demo registry bound to the loaded backends (`app.demos.registry`).
ProducerFactory = Callable[[str, Any], Producer]


def run_key(kind: str, request: BaseModel) -> str:
    """Identical runs share one key: seeded sampling is deterministic, so the key names a trajectory."""
    return f"{kind}:{json.dumps(request.model_dump(mode='json'), sort_keys=True, separators=(',', ':'))}"


class Busy(Exception):
    """Admitting the job would make it wait longer than the bound (or past the queue's hard cap).

    `wait`: the estimated seconds it would have waited; `retry_after`: about when the queue will have drained
    enough to admit it."""

    def __init__(self, wait: float = 0.0, retry_after: float = 1.0) -> None:
        super().__init__(f"estimated wait {wait:.0f} s")
        self.wait = wait
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The server is stopping and takes no new jobs."""


class Refused(ValueError):
    """The model cannot serve this request (the samplers' `SamplingError`, translated by `app.backends`).

    A client error, not a server fault: its message is the sampler's readable reason, shown as is."""


@dataclass(frozen=True, slots=True)
class Queued:
    position: int
    eta: float  # estimated seconds until the job starts


@dataclass(frozen=True, slots=True)
class Failed:
    message: str
    refused: bool = False  # True: the model refused the request (a client error); False: a server fault


@dataclass(frozen=True, slots=True)
class Unavailable(Failed):
    """Not served now, but worth retrying (close 1013): busy past the wait bound, no workers, the queue unreachable.

    `retry_after`: about when to try again, in seconds."""

    retry_after: float = 5.0


Event = Queued | Rendered | Failed


def busy_message(wait: float, retry_after: float, limit: float) -> str:
    """Why a run was not admitted, and when to come back."""
    return (
        f"busy: this run would wait about {wait:.0f} s for a free slot, over the server's limit of {limit:g} s; "
        f"try again in {max(1, round(retry_after))} s"
    )


class LeaveOnce:
    """A subscription's lifetime, for both engines: use it with `with` (or call `leave()`); however a client ends,
    its share of the run is released exactly once."""

    _left = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object) -> None:
        self.leave()

    def leave(self) -> None:
        if not self._left:
            self._left = True
            self._release()

    def _release(self) -> None:
        raise NotImplementedError


class RunSubscription(Protocol):
    """One client's view of a run. Iterate `events()`; always leave (use `with`)."""

    def __enter__(self) -> RunSubscription: ...

    def __exit__(self, *args: object) -> None: ...

    def leave(self) -> None: ...

    def events(self) -> AsyncIterator[Event]: ...


class Runs(Protocol):
    """An engine, as its callers see it."""

    @property
    def closing(self) -> bool: ...

    @property
    def max_wait_seconds(self) -> float: ...

    def run(self, kind: str, request: BaseModel, html: bool = True) -> RunSubscription:
        """Subscribe to the run of `request` for the demo `kind`. `html`: this subscriber sends the messages'
        HTML variant (json-only runs never render it)."""
        ...

    async def close(self) -> None: ...

    # counters for /readyz, /stats and the benchmarks
    @property
    def jobs_started(self) -> int: ...

    @property
    def cache_hits(self) -> int: ...

    @property
    def joined_inflight(self) -> int: ...

    @property
    def running(self) -> int: ...

    @property
    def queued(self) -> int: ...

    @property
    def cached(self) -> int: ...

    @property
    def cached_bytes(self) -> int: ...
