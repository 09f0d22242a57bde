"""`python -m app.worker`: a sampling worker for the Redis engine (THEATER_REDIS_URL). Any number of them, on any
machine that reaches Redis; each loads the backends and computes up to THEATER_MAX_RUNNING jobs at once.

    XREADGROUP (group `workers`) -> a job: run, canonical key, kind, request, ticket (= the run's generation)
    the run finished, superseded by a newer claim, or nobody watching? -> say so / skip, XACK
    else compute it with the in-process engine (the same producers and renderers as `python -m app` alone, so
    the messages are byte for byte the same) and XADD each message to the run's stream as `<generation>-<i>`
    done -> the stream's TTL becomes THEATER_REDIS_TTL_SECONDS (the replay cache), the claim is dropped, XACK

Recovery: while it works, a worker renews its claim on the job (XCLAIM ... JUSTID, every third of
THEATER_REDIS_CLAIM_SECONDS); a worker killed mid-run stops renewing, and after that many seconds another one
takes the job over (XAUTOCLAIM with that min-idle time). It recomputes the run (seeded: the same trajectory)
and writes only the messages after the last one in the stream, so clients see each message once, in order.
Stream ids fence writers: a worker thought dead that wakes up cannot write a message twice (Redis refuses an
id not above the stream's last), and it gives the job up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Literal

from redis.exceptions import ResponseError

from app.backends.interface import Backends
from app.backends.load import load_backends
from app.demos.protocol import Request, check_limits
from app.demos.registry import DEMOS, producer_factory
from app.engine.interface import Failed, Queued, run_key
from app.engine.local import Engine, Subscription
from app.engine.redis_keys import GROUP, MAX_SEQ, TERMINAL_FAILURES, Keys, message_id, parse_id, worker_member
from app.engine.redis_queue import (
    BLOCK_MS,
    FAILED_TTL_SECONDS,
    HEARTBEAT_SECONDS,
    UNREACHABLE,
    WORKER_SECONDS,
    Redis,
    close_quietly,
    connect,
    delete_if,
    ensure_group,
    is_nogroup,
    owner_ttl,
    read_entries,
)
from app.engine.wait import RECENT_JOBS
from app.errors import RequestError
from app.settings import Settings, get_settings

log = logging.getLogger("theater.worker")

MAX_DELIVERIES = 5  # a job handed to this many workers in turn (each died on it) is failed, not retried forever
Outcome = Literal["done", "failed", "stopped", "skipped", "lost", "again"]


class Fenced(Exception):
    """Another worker wrote this run's next message first: it holds the job now."""


@dataclass
class Control:
    """What the heartbeat found out about a running job."""

    stop: bool = False  # nobody watches the run any more
    lost: bool = False  # another worker claimed the job


@dataclass(frozen=True)
class Job:
    entry: str  # the jobs stream entry id
    run: str
    key: str
    kind: str
    request: Request
    generation: int


class Worker:
    def __init__(
        self, settings: Settings, backends: Backends, redis: Redis, name: str | None = None, use_torch: bool = True
    ) -> None:
        self.settings = settings
        self.backends = backends
        self.redis = redis
        self.keys = Keys(settings.redis_prefix)
        self.slots = settings.max_running
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"  # the consumer name: tests find a job's worker by it
        self.claim_seconds = settings.redis_claim_seconds
        self.owner_ttl = owner_ttl(settings)
        # The sampling itself: the in-process engine, its pool sized to our slots, nothing cached (Redis is the cache).
        self.engine = Engine(
            max_running=self.slots,
            max_queue=10_000,  # never used: we take at most `slots` jobs at once (but never Busy)
            cache_bytes=0,
            torch_threads=settings.effective_torch_threads,
            use_torch=use_torch,
            max_wait_seconds=float("inf"),
            producers=producer_factory(backends),
        )
        self.active: dict[str, asyncio.Task[None]] = {}
        self.stopping = asyncio.Event()

    # ----- the loop -----

    async def run(self) -> None:
        """Take jobs until `stopping` is set; then give running jobs the graceful-shutdown time to finish (the rest
        are taken over by other workers after the claim timeout)."""
        registration = asyncio.create_task(self._register())
        try:
            await self._take_jobs()
        finally:
            if self.active:
                await asyncio.wait(set(self.active.values()), timeout=self.settings.graceful_shutdown_seconds)
            for task in list(self.active.values()):
                task.cancel()
            await asyncio.gather(*self.active.values(), return_exceptions=True)
            registration.cancel()
            with contextlib.suppress(*UNREACHABLE, asyncio.CancelledError):
                await registration
            with contextlib.suppress(*UNREACHABLE, ResponseError):
                await self.redis.zrem(self.keys.workers, worker_member(self.name, self.slots))
                # Leave the group tidy, but never with jobs pending on us: deleting the consumer would drop them.
                if not (await self.redis.xpending_range(self.keys.jobs, GROUP, "-", "+", 1, consumername=self.name)):
                    await self.redis.xgroup_delconsumer(self.keys.jobs, GROUP, self.name)
            await self.engine.close()
            await close_quietly(self.redis)

    async def _take_jobs(self) -> None:
        keys = self.keys
        next_reclaim = 0.0
        down = False
        with contextlib.suppress(*UNREACHABLE):
            await ensure_group(self.redis, keys)
        while not self.stopping.is_set():
            try:
                free = self.slots - len(self.active)
                if free <= 0:  # wait for a slot (or the stop signal)
                    stop = asyncio.ensure_future(self.stopping.wait())
                    await asyncio.wait(
                        {*self.active.values(), stop}, timeout=HEARTBEAT_SECONDS, return_when=asyncio.FIRST_COMPLETED
                    )
                    stop.cancel()
                    continue
                if time.monotonic() >= next_reclaim:  # jobs whose worker stopped renewing its claim
                    next_reclaim = time.monotonic() + self.claim_seconds / 2
                    _cursor, claimed, _deleted = await self.redis.xautoclaim(
                        keys.jobs, GROUP, self.name, int(self.claim_seconds * 1000), "0-0", count=free
                    )
                    for entry, fields in claimed:
                        if fields:
                            free -= self._start(entry, fields, recovered=True)
                if free > 0:
                    response = await self.redis.xreadgroup(GROUP, self.name, {keys.jobs: ">"}, count=free, block=BLOCK_MS)
                    for entry, fields in read_entries(response):
                        self._start(entry, fields, recovered=False)
                if down:
                    log.info("run queue reachable again")
                down = False
            except ResponseError as error:
                if not is_nogroup(error):
                    raise
                await ensure_group(self.redis, keys)  # Redis restarted (or was flushed): the group is gone
            except UNREACHABLE as error:
                if not down:
                    log.warning("run queue unreachable: %r; retrying", error)
                down = True
                await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _register(self) -> None:
        """Announce our slots (replicas sum them for the wait estimate); lapses WORKER_SECONDS after we stop."""
        member = worker_member(self.name, self.slots)
        while True:
            with contextlib.suppress(*UNREACHABLE):
                await self.redis.zadd(self.keys.workers, {member: time.time() + WORKER_SECONDS})
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def _start(self, entry: str, fields: dict[str, str], recovered: bool) -> int:
        """Start a task for the job; 0 if it is ours already (XAUTOCLAIM may hand back our own idle job)."""
        if entry in self.active:
            return 0
        task = asyncio.create_task(self._job(entry, fields, recovered))
        self.active[entry] = task
        task.add_done_callback(lambda _task: self.active.pop(entry, None))
        return 1

    # ----- one job -----

    async def _job(self, entry: str, fields: dict[str, str], recovered: bool) -> None:
        try:
            kind = fields["kind"]
            request = DEMOS[kind].request.model_validate_json(fields["request"])
            job = Job(entry, fields["run"], fields["key"], kind, request, int(fields["ticket"]))
            if run_key(kind, request) != job.key:
                raise ValueError("the request does not match its key")
        except (KeyError, ValueError) as error:  # ValueError: pydantic's ValidationError too
            log.error("dropping malformed job %s: %r", entry, error)
            with contextlib.suppress(*UNREACHABLE):
                await self._ack(entry)
            return
        try:
            try:  # the replica checked these; a job written to Redis by anything else must pass them too
                check_limits(job.kind, job.request, self.settings)
                self.backends.check(job.request)
            except RequestError as error:
                log.warning("job %s refused: %s", entry, error.message)
                await self._end(job, 0, "failed", error.message, refused=True)
                return
            for attempt in range(3):
                outcome = await self._compute(job, recovered=recovered or attempt > 0)
                if outcome != "again":
                    break
            log.info("job %s (%s, generation %d): %s", entry, job.key[:60], job.generation, outcome)
        except UNREACHABLE as error:  # left pending: a worker takes it over once Redis is back, if anyone still watches
            log.warning("job %s abandoned: run queue unreachable (%r)", entry, error)
        except Exception:  # a fault of ours: say so; the job stays pending and is taken over (at most MAX_DELIVERIES)
            log.exception("job %s failed on this worker", entry)

    async def _compute(self, job: Job, recovered: bool) -> Outcome:
        keys, redis = self.keys, self.redis
        stream_key, owner_key = keys.run(job.run), keys.owner(job.run)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.get(owner_key)
            pipe.xrevrange(stream_key, count=1)
            pipe.xrevrange(stream_key, message_id(job.generation, MAX_SEQ), message_id(job.generation, 0), count=1)
            pipe.zcount(keys.watchers(job.run), time.time(), "+inf")
            pipe.xpending_range(keys.jobs, GROUP, job.entry, job.entry, 1)
            owner, last, ours, watchers, pending = await pipe.execute()
        superseded = (last and parse_id(last[0][0])[0] > job.generation) or owner not in (None, str(job.generation))
        if superseded or (ours and ours[0][1].get("type") in ("done", *TERMINAL_FAILURES)):
            await self._ack(job.entry)  # a newer claim computes the run, or it is finished already
            return "skipped"
        written = parse_id(ours[0][0])[1] if ours else 0
        if not watchers:
            return await self._end(job, written, "stopped", "this run was stopped: nobody was watching it")
        if pending and int(pending[0]["times_delivered"]) > MAX_DELIVERIES:
            return await self._end(job, written, "failed", "this run failed on every worker it was given to; please try again")
        fresh = not recovered and written == 0
        async with redis.pipeline(transaction=False) as pipe:
            pipe.set(owner_key, job.generation, ex=self.owner_ttl)
            pipe.expire(stream_key, self.owner_ttl)  # while computing: lapses unless renewed (a run nobody finishes)
            pipe.incr(keys.count("jobs_started" if fresh else "jobs_recovered"))
            if fresh:  # older generations' messages: nobody reads them any more (see RedisEngine._deliver)
                pipe.xtrim(stream_key, minid=message_id(job.generation, 0), approximate=False)
            await pipe.execute()
        return await self._stream(job, written, fresh)

    async def _stream(self, job: Job, written: int, fresh: bool) -> Outcome:
        """Compute the run with the in-process engine; write each message after the `written` ones already out."""
        control = Control()
        subscription = self.engine.run(job.kind, job.request, html=True)
        beat = asyncio.create_task(self._heartbeat(job, control, subscription))
        started = time.monotonic()
        index = 0
        failure: Failed | None = None
        done = False
        try:
            with subscription:
                async for event in subscription.events():
                    if control.lost:
                        break
                    if isinstance(event, Queued):
                        continue
                    if isinstance(event, Failed):
                        failure = None if control.stop else event
                        break
                    index += 1
                    if index <= written:  # recovering: these went out before (the same trajectory)
                        continue
                    await self._write(job, index, {"type": event.type, "json": event.json, "html": event.html})
                    written = index
                    done = event.type == "done"
        except Fenced:
            control.lost = True
        finally:
            beat.cancel()
        if control.lost:
            return "lost"  # not acknowledged: the worker that holds the job now finishes it
        if done:
            await self._finish(job, time.monotonic() - started if fresh else None)
            return "done"
        if failure is not None:
            return await self._end(job, written, "failed", failure.message, refused=failure.refused)
        if await self.redis.zcount(self.keys.watchers(job.run), time.time(), "+inf"):
            return "again"  # a client came back while the run was stopping: carry on from what is written
        return await self._end(job, written, "stopped", "this run was stopped: nobody was watching it")

    async def _write(self, job: Job, index: int, fields: dict[str, str]) -> None:
        try:
            await self.redis.xadd(self.keys.run(job.run), fields, id=message_id(job.generation, index))  # type: ignore[arg-type]
        except ResponseError as error:
            if "equal or smaller" in str(error):
                raise Fenced from error
            raise

    async def _heartbeat(self, job: Job, control: Control, subscription: Subscription) -> None:
        """Stop the run when nobody watches it; renew our claim on the job (or notice that we lost it)."""
        keys = self.keys
        tick = min(HEARTBEAT_SECONDS, self.claim_seconds / 3)
        next_claim = time.monotonic() + self.claim_seconds / 3
        while True:
            await asyncio.sleep(tick)
            try:
                claim = time.monotonic() >= next_claim
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.zcount(keys.watchers(job.run), time.time(), "+inf")
                    if claim:
                        pipe.xpending_range(keys.jobs, GROUP, job.entry, job.entry, 1)
                    watchers, *pending = await pipe.execute()
                if not watchers:
                    control.stop = True
                    subscription.leave()  # the engine stops the sampler within a step
                    return
                if not claim:
                    continue
                next_claim = time.monotonic() + self.claim_seconds / 3
                if not pending[0] or pending[0][0]["consumer"] != self.name:
                    control.lost = True  # we were silent too long and another worker took it over
                    subscription.leave()
                    return
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.xclaim(keys.jobs, GROUP, self.name, 0, [job.entry], justid=True)  # resets its idle time
                    pipe.expire(keys.owner(job.run), self.owner_ttl)
                    pipe.expire(keys.run(job.run), self.owner_ttl)
                    await pipe.execute()
            except UNREACHABLE:
                continue  # the job's next write fails too and abandons it

    async def _finish(self, job: Job, seconds: float | None) -> None:
        keys = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.expire(keys.run(job.run), self.settings.redis_ttl_seconds)  # now the replay cache
            if seconds is not None:  # a whole run's compute time: the replicas' wait estimate
                pipe.lpush(keys.durations, round(seconds, 3))
                pipe.ltrim(keys.durations, 0, RECENT_JOBS - 1)
            await pipe.execute()
        await delete_if(self.redis, keys.owner(job.run), str(job.generation))  # after the done message: see _exists
        await self._ack(job.entry)

    async def _end(self, job: Job, written: int, kind: str, message: str, refused: bool = False) -> Outcome:
        """End the run without a done message: its clients read why; the next request for it starts afresh."""
        try:
            await self._write(job, written + 1, {"type": kind, "message": message, "refused": "1" if refused else "0"})
            await self.redis.expire(self.keys.run(job.run), FAILED_TTL_SECONDS)
        except Fenced:
            pass  # a newer claim writes this run now
        await delete_if(self.redis, self.keys.owner(job.run), str(job.generation))
        await self._ack(job.entry)
        return "failed" if kind == "failed" else "stopped"

    async def _ack(self, entry: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xack(self.keys.jobs, GROUP, entry)
            pipe.xdel(self.keys.jobs, entry)  # the stream then holds only waiting and running jobs (its length: the line)
            await pipe.execute()


async def serve(settings: Settings, name: str | None = None) -> None:
    backends = await asyncio.to_thread(load_backends, settings)
    if backends.untrained:
        log.warning("UNTRAINED models in use: %s", ", ".join(backends.untrained))
    worker = Worker(settings, backends, connect(settings), name=name, use_torch=settings.models != "fake")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stopping.set)
    log.info("worker %s: %d slots, queue %s", worker.name, worker.slots, settings.redis_prefix)
    await worker.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.worker", description="Sample jobs from the Redis run queue.")
    parser.add_argument("--name", help="consumer name in the jobs group (default: host-pid)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    get_settings.cache_clear()
    settings = get_settings()
    if not settings.redis_url:
        parser.error("THEATER_REDIS_URL is not set: a worker takes its jobs from Redis")
    asyncio.run(serve(settings, name=args.name))


if __name__ == "__main__":
    main()
