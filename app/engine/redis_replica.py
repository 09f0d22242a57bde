"""The engine on Redis, web-replica side: runs are claimed and queued in Redis, computed by workers
(`app.worker`), and read back from each run's stream; this process never samples.

    request --key--> a claim in flight (owner)?   -> follow that generation of the run (joined, not recomputed)
                     the run's stream ends done?  -> replay it (the shared replay cache; no job)
                     estimated wait over bound?   -> Unavailable (busy, close 1013); no worker at all: the same
                     otherwise -> ticket = INCR seq; WATCH owner, MULTI: SET owner ticket, XADD the job; EXEC
                                  (a concurrent claim anywhere aborts ours: we follow theirs instead)

Each replica follows a run once (a `Feed`) for all its clients of that run; each client keeps its own index
into the feed's messages, as with the in-process engine. One task reads every followed run with one blocking
XREAD (plus the replica's doorbell stream, rung when a run is added), so a replica holds a couple of Redis
connections however many runs it follows. While it has clients of a run, the replica keeps its entry in the
run's watchers fresh (and the claim alive); workers stop runs nobody watches.

Queued clients get their place in line (their job's place among the entries no worker has read yet, read each
heartbeat with one XRANGE for all of them) and an ETA from the workers' recent job durations. Any Redis call
that fails ends the clients' runs with a clear `Unavailable` (close 1013); the next request tries Redis again,
so service resumes on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from app.engine.interface import Busy, Failed, ShuttingDown, Unavailable, busy_message, run_key
from app.engine.redis_feed import Feed, NoWorkers, RedisSubscription, claim_run, deliver
from app.engine.redis_keys import GROUP, Keys, message_id, parse_id, run_id
from app.engine.redis_queue import (
    BLOCK_MS,
    FAILED_TTL_SECONDS,
    HEARTBEAT_SECONDS,
    UNREACHABLE,
    UNREACHABLE_MESSAGE,
    WATCH_SECONDS,
    Capacity,
    Redis,
    close_quietly,
    connect,
    delete_if,
    owner_ttl,
    queue_line,
    read_capacity,
    read_streams,
)
from app.engine.wait import RECENT_JOBS, admission_wait, estimated_wait, mean_seconds
from app.settings import Settings

log = logging.getLogger("theater.engine.redis")

READ_COUNT = 256  # messages per run per XREAD
NO_WORKERS_MESSAGE = "no sampling workers are connected to the run queue; try again in a minute"
LOST_MESSAGE = "the run queue lost this run (was Redis restarted?); try again"


class RedisEngine:
    """Satisfies `app.engine.interface.Runs`. Start it (`await start()`) on the serving loop; `close()` at shutdown."""

    def __init__(self, redis: Redis, settings: Settings, name: str | None = None) -> None:
        self.redis = redis
        self.keys = Keys(settings.redis_prefix)
        self.max_wait_seconds = settings.max_wait_seconds
        self.max_queue = settings.max_queue
        self.ttl = settings.redis_ttl_seconds
        self.owner_ttl = owner_ttl(settings)
        self.timeout = settings.redis_timeout_seconds
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"  # this replica, as a watcher
        self.closing = False
        self.capacity = Capacity()
        self.cache_hits = 0  # runs this replica replayed (from Redis or from a finished feed)
        self.joined_inflight = 0  # runs this replica joined in flight (here or claimed elsewhere)
        self._running = 0
        self._queued = 0
        self._memory = 0
        self._feeds: dict[str, Feed] = {}
        self._bell = self.keys.bell(self.name)
        self._background: set[asyncio.Task[Any]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisEngine:
        return cls(connect(settings), settings)

    async def start(self) -> None:
        self._heartbeat = asyncio.create_task(self._beat())
        self._pump = asyncio.create_task(self._read())

    # ----- public API (event loop only) -----

    def run(self, kind: str, request: BaseModel, html: bool = True) -> RedisSubscription:
        """`Runs.run`: follow the run of `request` for the demo `kind`; a worker computes it. `html` is unused: the
        workers write both variants of every message. Admission is decided once Redis answers: see `events()`."""
        if self.closing:
            raise ShuttingDown
        key = run_key(kind, request)
        run = run_id(key)
        feed = self._feeds.get(run)
        if feed is None or feed.failure is not None:
            feed = self._feeds[run] = Feed(run, key, kind, request)
            feed.task = asyncio.create_task(self._follow(feed))
        elif feed.done:
            self.cache_hits += 1
        else:
            self.joined_inflight += 1
        return RedisSubscription(self, feed)

    async def reachable(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), self.timeout))
        except UNREACHABLE:
            return False

    async def close(self) -> None:
        """Take no more runs; end every local client's run; withdraw our watch (workers stop orphaned runs)."""
        self.closing = True
        feeds = list(self._feeds.values())
        self._feeds.clear()
        tasks = [task for task in (self._heartbeat, self._pump, *(feed.task for feed in feeds)) if task is not None]
        for task in tasks:
            task.cancel()
        for feed in feeds:
            feed.fail(Failed("the server stopped this run"))
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._unwatch([feed.run for feed in feeds if not feed.done]), self.timeout)
        for task in list(self._background):
            task.cancel()
        await close_quietly(self.redis)

    @property
    def jobs_started(self) -> int:
        return self.capacity.jobs_started  # all workers' count, as of the last heartbeat

    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def cached(self) -> int:
        return 0  # the replay cache is Redis's: see cached_bytes

    @property
    def cached_bytes(self) -> int:
        return self._memory  # Redis's used memory (replay cache, queue and all)

    @property
    def workers(self) -> int:
        return self.capacity.workers

    # ----- internals -----

    def _leave(self, feed: Feed) -> None:
        feed.subscribers -= 1
        if feed.subscribers > 0:
            return
        if self._feeds.get(feed.run) is feed:
            del self._feeds[feed.run]
        if feed.task is not None and not feed.task.done():
            feed.task.cancel()
        if not feed.finished and not self.closing:  # nobody here watches it any more: workers stop it unless others do
            self._spawn(self._unwatch([feed.run]))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _unwatch(self, runs: list[str]) -> None:
        with contextlib.suppress(*UNREACHABLE):
            async with self.redis.pipeline(transaction=False) as pipe:
                for run in runs:
                    pipe.zrem(self.keys.watchers(run), self.name)
                await pipe.execute()

    async def _follow(self, feed: Feed) -> None:
        try:
            generation = await self._open(feed)
            feed.last_id = message_id(generation, 0)
            feed.generation = generation  # from now on the pump reads it
            await self._ring()
        except asyncio.CancelledError:
            raise
        except Busy as busy:
            message = busy_message(busy.wait, busy.retry_after, self.max_wait_seconds)
            feed.fail(Unavailable(message, retry_after=busy.retry_after))
        except NoWorkers:
            feed.fail(Unavailable(NO_WORKERS_MESSAGE, retry_after=30))
        except UNREACHABLE as error:
            log.warning("run queue unreachable: %r", error)
            feed.fail(Unavailable(UNREACHABLE_MESSAGE))
        except Exception as error:  # a fault of ours or an unexpected answer: log it once, tell the clients
            log.exception("following run %s failed", feed.key[:80])
            feed.fail(Failed(f"generation failed on the server ({type(error).__name__}); please try again"))

    async def _open(self, feed: Feed) -> int:
        """The generation of the run to follow: one in flight, the finished one, or a new claim of ours."""
        keys, redis = self.keys, self.redis
        for _attempt in range(3):
            async with redis.pipeline(transaction=False) as pipe:
                # Watch before claiming: a worker taking the job must see that someone wants it.
                pipe.zadd(keys.watchers(feed.run), {self.name: time.time() + WATCH_SECONDS})
                pipe.expire(keys.watchers(feed.run), int(2 * WATCH_SECONDS))
                pipe.get(keys.owner(feed.run))
                pipe.xrevrange(keys.run(feed.run), count=1)
                pipe.xlen(keys.jobs)
                pipe.xpending(keys.jobs, GROUP)  # NOGROUP until a worker made the group: then nothing runs
                pipe.lrange(keys.durations, 0, RECENT_JOBS - 1)  # fresh: a crowd may follow the first runs closely
                *_, owner, last, jobs, pending, durations = await pipe.execute(raise_on_error=False)
            for answer in (owner, last, jobs, durations):
                if isinstance(answer, Exception):
                    raise answer
            self.capacity = replace(self.capacity, seconds_per_job=mean_seconds(durations))
            if owner is not None:
                self.joined_inflight += 1
                return int(owner)  # its place in line comes with the next heartbeat
            if last and last[0][1].get("type") == "done":
                self.cache_hits += 1
                await redis.expire(keys.run(feed.run), self.ttl)  # a replay keeps the run longer
                return parse_id(last[0][0])[0]
            running = int(pending["pending"]) if isinstance(pending, dict) else 0
            await self._admit(running, max(0, int(jobs) - running))  # a long line: refused before any write
            ticket = int(await redis.incr(keys.seq))
            claim = await claim_run(self.redis, self.keys, feed, ticket, self.owner_ttl)
            if claim is None:
                continue  # a claim came and went meanwhile: look again
            if isinstance(claim, int):
                self.joined_inflight += 1
                return claim  # someone else's: its place in line comes with the next heartbeat
            # Admitted above on the line as it was; clients arriving together all saw it short. The line as it
            # stood when our job joined it (read in the same transaction) decides, as the in-process engine would.
            self._running = claim.running
            try:
                await self._admit(claim.running, claim.queued)
            except Busy as busy:
                await self._withdraw(feed, ticket, claim.entry, busy)
                raise
            self._place(feed, claim.queued + 1)  # then each heartbeat
            return ticket
        raise RuntimeError("the run's claim kept changing hands")

    async def _admit(self, running: int, queued: int) -> None:
        capacity = self.capacity
        if not capacity.read_at or time.monotonic() - capacity.read_at > 3 * HEARTBEAT_SECONDS:
            capacity = self.capacity = await read_capacity(self.redis, self.keys)
        if capacity.slots <= 0:  # before refusing, look again: the snapshot may predate the workers' return
            capacity = self.capacity = await read_capacity(self.redis, self.keys)
        if capacity.slots <= 0:
            raise NoWorkers
        wait = admission_wait(running, queued, capacity.slots, capacity.seconds_per_job)
        if wait > 0 and (wait > self.max_wait_seconds or queued >= self.max_queue):
            raise Busy(wait, retry_after=max(1.0, wait - self.max_wait_seconds))

    async def _withdraw(self, feed: Feed, ticket: int, entry: str, busy: Busy) -> None:
        """Take our job back out of the line; clients that joined our claim meanwhile read why (a `busy` entry)."""
        message = busy_message(busy.wait, busy.retry_after, self.max_wait_seconds)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xdel(self.keys.jobs, entry)
            pipe.xadd(
                self.keys.run(feed.run),
                {"type": "busy", "message": message, "retry_after": busy.retry_after},
                id=message_id(ticket, 1),
            )
            pipe.expire(self.keys.run(feed.run), FAILED_TTL_SECONDS)
            await pipe.execute(raise_on_error=False)
        await delete_if(self.redis, self.keys.owner(feed.run), str(ticket))

    def _place(self, feed: Feed, in_stream: int) -> None:
        """`in_stream`: the job's place among the jobs no worker has taken (0: taken). Less the free slots (those
        jobs start at once): as with the in-process engine, a client hears of a line only when it waits in one."""
        free = max(0, self.capacity.slots - self._running)
        position = max(0, in_stream - free) if in_stream and not feed.messages else 0
        if position != feed.position:
            feed.position = position
            feed.eta = estimated_wait(position, self.capacity.seconds_per_job, self.capacity.slots)
            feed.wake()

    async def _ring(self) -> None:
        """Wake the pump's blocking read: it has a run to add."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self._bell, {"ring": "1"}, maxlen=1, approximate=False)
            pipe.expire(self._bell, 3600)
            await pipe.execute()

    async def _read(self) -> None:
        """The pump: one blocking XREAD over every run followed here and the doorbell, for as long as we serve."""
        bell_id = "0-0"
        while True:
            feeds = {self.keys.run(f.run): f for f in self._feeds.values() if f.generation and not f.finished}
            try:
                streams = {key: feed.last_id for key, feed in feeds.items()}
                streams[self._bell] = bell_id
                response = await self.redis.xread(streams, count=READ_COUNT, block=BLOCK_MS)  # type: ignore[arg-type]
                for key, entries in read_streams(response):
                    if key == self._bell:
                        bell_id = entries[-1][0]
                    elif key in feeds:
                        deliver(feeds[key], entries)
            except asyncio.CancelledError:
                raise
            except UNREACHABLE as error:  # every run read here is cut off: say so now rather than hang
                log.warning("run queue unreachable: %r", error)
                for feed in feeds.values():
                    feed.fail(Unavailable(UNREACHABLE_MESSAGE))
                await asyncio.sleep(0.2)
            except Exception as error:
                log.exception("reading the runs failed")
                for feed in feeds.values():
                    feed.fail(Failed(f"generation failed on the server ({type(error).__name__}); please try again"))
                await asyncio.sleep(0.2)

    async def _beat(self) -> None:
        """Each second: read the workers' capacity and the queue, renew our watch and the claims of the runs we
        follow, and move queued clients up the line."""
        down = False
        while True:
            try:
                await self._refresh()
                if down:
                    log.info("run queue reachable again")
                down = False
            except UNREACHABLE as error:
                if not down:
                    log.warning("run queue unreachable: %r", error)
                down = True
            except Exception:
                log.exception("heartbeat failed")
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _refresh(self) -> None:
        keys = self.keys
        self.capacity = await read_capacity(self.redis, keys)
        feeds = [feed for feed in self._feeds.values() if not feed.finished]
        lapse = time.time() + WATCH_SECONDS
        followed = [feed for feed in feeds if feed.generation]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xinfo_groups(keys.jobs)
            pipe.xlen(keys.jobs)
            pipe.xpending(keys.jobs, GROUP)
            pipe.info("memory")
            for feed in feeds:
                pipe.zadd(keys.watchers(feed.run), {self.name: lapse})
                pipe.expire(keys.watchers(feed.run), int(2 * WATCH_SECONDS))
            for feed in followed:
                pipe.expire(keys.owner(feed.run), self.owner_ttl)  # a queued claim outlives a long line
            answers = await pipe.execute(raise_on_error=False)
        groups, jobs, pending, memory = answers[:4]
        self._running = int(pending["pending"]) if isinstance(pending, dict) else 0
        self._queued = max(0, int(jobs) - self._running) if isinstance(jobs, int) else 0
        self._memory = int(memory.get("used_memory", 0)) if isinstance(memory, dict) else 0
        waiting = [feed for feed in followed if not feed.messages]
        if waiting and isinstance(groups, list):
            line = await queue_line(self.redis, self.keys, groups, self.max_queue)
            for feed in waiting:
                self._place(feed, line.get(feed.run, 0))
        unclaimed = [feed for feed, claimed in zip(followed, answers[4 + 2 * len(feeds) :]) if claimed == 0]
        await self._check_lost(unclaimed)

    async def _check_lost(self, feeds: list[Feed]) -> None:
        """Runs without a claim (the EXPIRE above found no owner) must have written past what we read: a worker
        writes a run's last message before it drops the claim. Otherwise Redis lost the run (a restart without
        persistence, an eviction), and its clients would wait forever: tell them."""
        if not feeds:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for feed in feeds:
                pipe.xrange(self.keys.run(feed.run), f"({feed.last_id}", "+", count=1)
            newer = await pipe.execute()
        for feed, entries in zip(feeds, newer):
            if not entries and not feed.finished:
                feed.fail(Unavailable(LOST_MESSAGE))
