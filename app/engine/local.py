"""The generation engine: one fixed worker pool, shared jobs, a queue admitted by wait, a byte-bounded replay cache.

    request --key--> cache hit?  -> replay the recorded frames at once
                     in flight?  -> join that job (computed once, fanned out)
                     free slot?  -> start a job in the pool
                     estimated wait under the bound? -> wait in FIFO order, told the position and an ETA
                     otherwise   -> Busy

Two stages, pipelined: a sampler thread (one per running job) computes frames and hands each one, still
unrendered, to a single render thread, which turns it into a `Rendered` message (JSON, PNG; the HTML
fragment too while an html client watches the job, else only when one first asks) and appends it to the
job's list. Torch ops release the GIL, so rendering frame n overlaps computing frame
n+1 instead of adding to it. Every subscriber reads the job's list at its own pace (a slow socket slows only
itself; memory is bounded by the steps of one run). When the last subscriber leaves a running job,
`should_stop` turns true and the sampler ends within one step. All bookkeeping runs on the event loop;
worker threads only append frames and call back through the loop (at most one pending wake-up per job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor

from pydantic import BaseModel

from app.engine.interface import (
    Busy,
    Event,
    Failed,
    LeaveOnce,
    Producer,
    ProducerFactory,
    Queued,
    Refused,
    ShuttingDown,
    run_key,
)
from app.engine.job import Job
from app.engine.wait import RECENT_JOBS, estimated_wait, mean_seconds
from app.render.message import Deferred, Rendered

log = logging.getLogger("theater.engine")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class Engine:
    def __init__(
        self,
        max_running: int,
        max_queue: int,
        cache_bytes: int,
        torch_threads: int = 1,
        use_torch: bool = True,
        max_wait_seconds: float = 120.0,
        initial_job_seconds: float = 2.0,
        producers: ProducerFactory | None = None,
    ) -> None:
        self.max_running = max_running
        self._producers = producers  # (kind, request) -> producer: what `run` computes (the demo registry)
        self.max_queue = max_queue  # a hard cap on waiting jobs (memory); admission is decided by the wait
        self.max_wait_seconds = max_wait_seconds
        self.cache_bytes = cache_bytes
        # Compute time of the last finished jobs: the wait estimate's unit (before the first, `initial_job_seconds`).
        self._durations: deque[float] = deque(maxlen=RECENT_JOBS)
        self._initial_job_seconds = initial_job_seconds
        self._use_torch = use_torch
        if use_torch:
            self._pool = ThreadPoolExecutor(
                max_workers=max_running, thread_name_prefix="sampler", initializer=_init_worker, initargs=(torch_threads,)
            )
        else:
            self._pool = ThreadPoolExecutor(max_workers=max_running, thread_name_prefix="sampler")
        # One render thread for all jobs: FIFO keeps each job's frames in order; rendering (~0.05-0.2 ms a
        # frame) is far cheaper than a model step, so one thread keeps up with every sampler.
        self._render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: set[Job] = set()
        self._queue: deque[Job] = deque()
        self._inflight: dict[str, Job] = {}
        self._cache: OrderedDict[str, Job] = OrderedDict()
        self._cached_bytes = 0
        self.closing = False
        # counters for tests, benchmarks and /readyz
        self.jobs_started = 0
        self.cache_hits = 0
        self.joined_inflight = 0

    # ----- public API (event loop only) -----

    def run(self, kind: str, request: BaseModel, html: bool = True) -> Subscription:
        """`Runs.run`: the run of `request` for the demo `kind`, its producer built by the factory given."""
        if self._producers is None:
            raise TypeError("this engine was built without a producer factory: use join(key, produce)")
        key = run_key(kind, request)
        if self.closing or key in self._cache or key in self._inflight:  # joined or replayed: no producer to build
            return self.join(key, _spent, html)
        return self.join(key, self._producers(kind, request), html)

    def join(self, key: str, produce: Producer, html: bool = True) -> Subscription:
        """Subscribe to the run for `key`, computed by `produce` unless it is cached or in flight; raises Busy or
        ShuttingDown. `html`: this subscriber sends the messages' HTML variant (then rendered in the render
        thread; json-only runs never render it)."""
        if self.closing:
            raise ShuttingDown
        self._loop = self._loop or asyncio.get_running_loop()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.cache_hits += 1
            return Subscription(self, cached, replay=True, html=html)
        job = self._inflight.get(key)
        if job is not None:
            self.joined_inflight += 1
            return Subscription(self, job, html=html)
        if len(self._running) >= self.max_running:
            wait = self.estimated_wait(len(self._queue) + 1)
            if wait > self.max_wait_seconds or len(self._queue) >= self.max_queue:
                raise Busy(wait, retry_after=max(1.0, wait - self.max_wait_seconds))
        job = Job(key, produce, waiter=self._loop.create_future())
        self._inflight[key] = job
        if len(self._running) < self.max_running:
            self._start(job)
        else:
            self._queue.append(job)
            job.position = len(self._queue)
        return Subscription(self, job, html=html)

    @property
    def seconds_per_job(self) -> float:
        """Mean compute time of the recent finished jobs (runs differ: a 1000-step DDPM and a 16-step race)."""
        return mean_seconds(self._durations, self._initial_job_seconds)

    def estimated_wait(self, position: int) -> float:
        """Seconds until the job at queue `position` (1: next) starts: the `position` jobs that free a slot before
        it (the running ones are half done on average, the queued ones whole) share `max_running` slots."""
        return estimated_wait(position, self.seconds_per_job, self.max_running)

    def position(self, job: Job) -> int:
        return job.position

    def _renumber(self) -> None:
        """One pass over the line after it moved, so each waiting client's position is read, not searched for
        (a search per client per move would cost the event loop the square of the line's length)."""
        for place, job in enumerate(self._queue, start=1):
            job.position = place

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def cached(self) -> int:
        return len(self._cache)

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def clear_cache(self) -> None:
        self._cache.clear()
        self._cached_bytes = 0

    async def close(self) -> None:
        """Stop taking jobs, stop the running ones within a step, wake every subscriber."""
        self.closing = True
        for job in list(self._running) + list(self._queue):
            job.stop = True
        for job in list(self._queue):
            self._queue.remove(job)
            job.state, job.position = "stopped", 0
            self._wake(job)
        for job in list(self._running):
            self._wake(job)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._render_pool.shutdown(wait=False, cancel_futures=True)

    # ----- internals -----

    def _start(self, job: Job) -> None:
        assert self._loop is not None
        job.started_at = time.monotonic()
        job.state, job.position = "running", 0
        self._running.add(job)
        self.jobs_started += 1
        future = self._loop.run_in_executor(self._pool, self._work, job)

        def finished(_future: asyncio.Future[None]) -> None:
            self._finish(job)

        future.add_done_callback(finished)

    def _work(self, job: Job) -> None:
        """Runs in a sampler thread: compute frames, hand each to the render thread, wait for the last."""

        def should_stop() -> bool:
            return job.stop

        rendered: Future[None] | None = None
        try:
            if self._use_torch:
                import torch

                context: contextlib.AbstractContextManager[object] = torch.inference_mode()
            else:
                context = contextlib.nullcontext()
            with context:
                for item in job.produce(should_stop):
                    rendered = self._render_pool.submit(self._render, job, item)
                    if job.stop:
                        break
        except Refused as error:  # the sampler refused the request (SamplingError): a client error, say why
            log.info("job %s refused by the sampler: %s", job.key[:80], error)
            job.error = str(error)[:300] or "the model cannot generate this request"
            job.refused = True
        except RuntimeError as error:  # the render pool is shut down: the server is stopping
            if not self.closing:
                log.exception("job %s failed", job.key[:80])
                job.error = f"generation failed on the server ({type(error).__name__}); please try again"
        except Exception as error:  # a fault in a model: log it once, tell the clients
            log.exception("job %s failed", job.key[:80])
            job.error = f"generation failed on the server ({type(error).__name__}); please try again"
        if rendered is not None and not job.stop and not job.error:
            # The run is complete and goes to the replay cache: render the HTML still pending (json-only
            # clients) now, after its last frame went out, so the cache holds strings only. Pending renders
            # keep frames and closures alive, and every full garbage collection would walk those millions
            # of objects on whichever thread triggers it, the event loop's included (200 ms stalls).
            with contextlib.suppress(RuntimeError):  # the render pool is shut down: the server is stopping
                rendered = self._render_pool.submit(self._materialize, job)
        if rendered is not None:  # FIFO: once the last is rendered, all are, and `_finish` sees every frame
            with contextlib.suppress(CancelledError, RuntimeError):  # cancelled or loop closed: shutting down
                rendered.result()

    def _render(self, job: Job, item: Rendered | Deferred) -> None:
        """Runs in the render thread."""
        if job.error:
            return
        try:
            message = item if isinstance(item, Rendered) else item()
            if job.html_subscribers:  # render the HTML here, off the event loop (json-only: never, or later)
                message.html  # noqa: B018  (the property renders and keeps it)
        except Exception as error:  # a fault in a renderer: log it once, stop the job, tell the clients
            log.exception("job %s failed to render", job.key[:80])
            job.error = f"generation failed on the server ({type(error).__name__}); please try again"
            job.stop = True
            return
        job.frames.append(message)
        if not job.wake_pending:  # frames that arrive before the loop runs share one wake-up
            job.wake_pending = True
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._woken, job)

    def _materialize(self, job: Job) -> None:
        """Runs in the render thread: every message's HTML, so that nothing but strings stays cached."""
        try:
            for message in job.frames:
                message.html  # noqa: B018  (the property renders and keeps it)
        except Exception:  # the clients have their frames already: log it; html replays render on need
            log.exception("job %s failed to render its HTML for the cache", job.key[:80])

    def _woken(self, job: Job) -> None:
        job.wake_pending = False  # cleared before subscribers read: a frame appended later schedules anew
        self._wake(job)

    def _finish(self, job: Job) -> None:
        self._running.discard(job)
        if job.error:
            job.state = "failed"
        elif job.stop or not job.frames or job.frames[-1].type != "done":
            job.state = "stopped"
        else:
            job.state = "done"
        if self._inflight.get(job.key) is job:
            del self._inflight[job.key]
        if job.state == "done":
            self._durations.append(time.monotonic() - job.started_at)
            self._remember(job)
        self._wake(job)
        while self._queue and len(self._running) < self.max_running and not self.closing:
            self._start(self._queue.popleft())
        self._renumber()
        for waiting in self._queue:
            self._wake(waiting)

    def _remember(self, job: Job) -> None:
        job.nbytes = sum(message.nbytes for message in job.frames)  # counted once, HTML included (`_materialize`)
        if job.nbytes > self.cache_bytes:
            return
        job.produce = _spent
        self._cache[job.key] = job
        self._cached_bytes += job.nbytes
        self._evict()

    def _evict(self) -> None:
        while self._cached_bytes > self.cache_bytes:
            _key, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.nbytes

    def _wake(self, job: Job) -> None:
        waiter = job.waiter
        if job.finished:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return
        assert self._loop is not None
        job.waiter = self._loop.create_future()
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _leave(self, job: Job, html: bool) -> None:
        job.subscribers -= 1
        job.html_subscribers -= html
        if job.subscribers > 0 or job.finished:
            return
        # Nobody watches any more: stop computing and let a later identical request start afresh.
        job.stop = True
        if self._inflight.get(job.key) is job:
            del self._inflight[job.key]
        if job.position:
            self._queue.remove(job)
            job.state, job.position = "stopped", 0
            self._renumber()
            for waiting in self._queue:
                self._wake(waiting)


def _spent(_should_stop: Callable[[], bool]) -> Iterator[Rendered | Deferred]:
    return iter(())


class Subscription(LeaveOnce):
    """One socket's view of a job. Iterate `events()`; always call `leave()` (use `with`)."""

    def __init__(self, engine: Engine, job: Job, replay: bool = False, html: bool = True) -> None:
        self.engine = engine
        self.job = job
        self.replay = replay
        self.html = html
        job.subscribers += 1
        job.html_subscribers += html

    def _release(self) -> None:
        self.engine._leave(self.job, self.html)

    async def events(self) -> AsyncIterator[Event]:
        job = self.job
        sent = 0
        last_position = 0
        while True:
            waiter = job.waiter
            if job.state == "queued":
                position = self.engine.position(job)
                if position and position != last_position:
                    last_position = position
                    yield Queued(position, self.engine.estimated_wait(position))
                    continue
            if sent < len(job.frames):
                yield job.frames[sent]
                sent += 1
                continue
            if job.finished:
                if job.state == "failed":
                    yield Failed(job.error, refused=job.refused)
                elif job.state == "stopped":
                    yield Failed("the server stopped this run" if self.engine.closing else "this run was stopped")
                return
            assert waiter is not None
            await asyncio.shield(waiter)
