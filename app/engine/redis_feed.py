"""A run as a Redis replica follows it (`app.engine.redis_replica`): the feed its local clients share, each
client's subscription, the atomic claim that enqueues a run's job, and the delivery of the messages read back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel
from redis.exceptions import WatchError

from app.engine.interface import Event, Failed, LeaveOnce, Queued, Unavailable
from app.engine.redis_keys import GROUP, TERMINAL_FAILURES, Keys, parse_id
from app.engine.redis_queue import Entry, Redis
from app.render.message import Rendered

GAP_MESSAGE = "messages of this run were evicted from the run queue; try again"


class Engine(Protocol):
    """What a subscription needs of its engine."""

    def _leave(self, feed: Feed) -> None: ...


class NoWorkers(Exception):
    """No worker has registered lately: a job would wait forever."""


@dataclass(frozen=True)
class Claimed:
    """Our claim of a run: its job's entry, and the line when the job joined it (read in the same transaction)."""

    entry: str
    running: int
    queued: int  # jobs ahead of ours that no worker has taken


class Feed:
    """One run as this replica follows it: its messages, read from the run's stream once and shared by every
    local client of the run."""

    def __init__(self, run: str, key: str, kind: str, request: BaseModel) -> None:
        self.run = run
        self.key = key
        self.kind = kind
        self.request = request
        self.generation = 0  # the claim followed (0: not known yet; then the pump reads the run)
        self.last_id = ""  # the stream id of the last entry read
        self.messages: list[Rendered] = []
        self.done = False
        self.failure: Failed | None = None
        self.position = 0  # place in the jobs queue while no message has come (0: not queued)
        self.eta = 0.0
        self.subscribers = 0
        self.task: asyncio.Task[None] | None = None
        self.waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def finished(self) -> bool:
        return self.done or self.failure is not None

    def wake(self) -> None:
        waiter, self.waiter = self.waiter, asyncio.get_running_loop().create_future()
        if not waiter.done():
            waiter.set_result(None)

    def fail(self, failure: Failed) -> None:
        if not self.finished:
            self.failure = failure
        self.wake()


class RedisSubscription(LeaveOnce):
    """One client's view of a run (the in-process `Subscription`'s counterpart)."""

    def __init__(self, engine: Engine, feed: Feed) -> None:
        self.engine = engine
        self.feed = feed
        feed.subscribers += 1

    def _release(self) -> None:
        self.engine._leave(self.feed)

    async def events(self) -> AsyncIterator[Event]:
        feed = self.feed
        sent = 0
        told = 0
        while True:
            waiter = feed.waiter
            if sent < len(feed.messages):
                yield feed.messages[sent]
                sent += 1
                continue
            if feed.failure is not None:
                yield feed.failure
                return
            if feed.done:
                return
            if sent == 0 and feed.position > 0 and feed.position != told:
                told = feed.position
                yield Queued(feed.position, feed.eta)
                continue
            await asyncio.shield(waiter)


def deliver(feed: Feed, entries: list[Entry]) -> None:
    """Append a run's new messages to its feed: in order, each once, until the run ends.

    A newer generation of the run (a claim made after this one lapsed) is the same trajectory (seeded runs
    are deterministic): the feed follows it, skipping the messages it has."""
    for entry_id, fields in entries:
        if feed.finished:
            break
        feed.last_id = entry_id
        generation, index = parse_id(entry_id)
        if generation > feed.generation:
            feed.generation = generation
        if generation < feed.generation or index <= len(feed.messages):
            continue
        if index != len(feed.messages) + 1:
            feed.fail(Unavailable(GAP_MESSAGE))
            return
        kind = fields.get("type", "")
        if kind == "busy":  # the claim we joined was withdrawn: the line was too long
            feed.fail(Unavailable(fields.get("message", "busy"), retry_after=float(fields.get("retry_after", 5))))
            return
        if kind in TERMINAL_FAILURES:
            feed.fail(Failed(fields.get("message") or "this run was stopped", refused=fields.get("refused") == "1"))
            return
        feed.messages.append(Rendered(kind, fields.get("json", ""), html=fields.get("html", "")))
        feed.done = kind == "done"
    feed.position = 0
    feed.wake()


async def claim_run(redis: Redis, keys: Keys, feed: Feed, ticket: int, owner_ttl: int) -> Claimed | int | None:
    """Claim the run and enqueue its job atomically (WATCH owner; MULTI SET + XADD + the line; EXEC): returns
    our claim, the generation someone else claimed first, or None when a claim came and went meanwhile."""
    owner = keys.owner(feed.run)
    job = {"run": feed.run, "key": feed.key, "kind": feed.kind, "request": feed.request.model_dump_json(), "ticket": ticket}
    async with redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(owner)
            current = await pipe.get(owner)
            if current is not None:
                await pipe.unwatch()
                return int(current)
            pipe.multi()
            pipe.set(owner, ticket, ex=owner_ttl)
            pipe.xadd(keys.jobs, job)  # type: ignore[arg-type]
            pipe.xlen(keys.jobs)
            pipe.xpending(keys.jobs, GROUP)  # NOGROUP before any worker: an error in its place, the rest ran
            _, entry, jobs, pending = await pipe.execute(raise_on_error=False)
        except WatchError:
            return None
    for answer in (entry, jobs):
        if isinstance(answer, Exception):
            raise answer
    running = int(pending["pending"]) if isinstance(pending, dict) else 0
    return Claimed(str(entry), running, max(0, int(jobs) - running - 1))
