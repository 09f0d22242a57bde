"""What the routes, the export and the prewarm need from an engine: either the in-process one (`app.engine.local`) or
the Redis one (`app.engine.redis_replica`, when THEATER_REDIS_URL is set). Both satisfy `Runs`.

    subscription = engine.join(key, produce, html=..., kind=kind, request=request)   # Busy, ShuttingDown
    with subscription:
        async for event in subscription.events():   # Queued | Rendered | Failed (Unavailable: try later)
            ...

The in-process engine computes `produce` itself and ignores `kind` and `request`; the Redis engine enqueues
`kind` and `request` for a worker (which builds the same producer) and ignores `produce`. The in-process engine
decides admission inside `join` (raising Busy); the Redis engine decides it once Redis answers, so a run it
cannot take arrives as an `Unavailable` event before any message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from app.demos.protocol import Request
from app.engine.local import Failed, Producer, Queued
from app.render.message import Rendered


@dataclass(frozen=True, slots=True)
class Unavailable(Failed):
    """Not served now, but worth retrying (close 1013): busy past the wait bound, no workers, the queue unreachable.

    `retry_after`: about when to try again, in seconds."""

    retry_after: float = 5.0


Event = Queued | Rendered | Failed


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

    def join(
        self, key: str, produce: Producer, html: bool = True, kind: str | None = None, request: Request | None = None
    ) -> RunSubscription: ...

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
