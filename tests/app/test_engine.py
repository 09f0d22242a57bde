"""The engine on its own: sharing, caching, queueing, cancellation, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterator

import pytest

from app.backends.fakes import FakeText
from app.demos import producers as render_module
from app.demos.producers import text_run
from app.engine.interface import Busy, Failed, Queued, Refused, ShuttingDown
from app.engine.local import Engine, Subscription
from app.render.message import Rendered
from models.text.decoding import TextRequest
from tests.app.live import backends_with


def engine(
    max_running: int = 2,
    max_queue: int = 4,
    cache_bytes: int = 10_000_000,
    max_wait_seconds: float = 120.0,
    initial_job_seconds: float = 2.0,
) -> Engine:
    return Engine(
        max_running,
        max_queue,
        cache_bytes,
        use_torch=False,
        max_wait_seconds=max_wait_seconds,
        initial_job_seconds=initial_job_seconds,
    )


async def collect(sub: Subscription) -> list[object]:
    with sub:
        return [event async for event in sub.events()]


def frames(events: list[object]) -> list[str]:
    return [e.json for e in events if isinstance(e, Rendered)]


def test_identical_requests_are_computed_once_and_fanned_out() -> None:
    fake = FakeText(0.005)

    async def main() -> None:
        eng = engine()
        produce = text_run(backends_with(text=fake), TextRequest(length=6, steps=6))
        results = await asyncio.gather(*(collect(eng.join("k", produce)) for _ in range(5)))
        assert fake.calls == 1 and eng.jobs_started == 1 and eng.joined_inflight == 4
        assert all(frames(r) == frames(results[0]) for r in results) and len(frames(results[0])) == 8
        replay = eng.join("k", produce)
        assert replay.replay and frames(await collect(replay)) == frames(results[0])
        assert fake.calls == 1 and eng.cache_hits == 1
        await eng.close()

    asyncio.run(main())


def test_cache_is_bounded_by_bytes() -> None:
    fake = FakeText()

    async def main() -> None:
        eng = engine(cache_bytes=100_000)
        for seed in range(6):
            await collect(eng.join(f"k{seed}", text_run(backends_with(text=fake), TextRequest(length=8, steps=4, seed=seed))))
        assert 0 < eng.cached < 6 and eng.cached_bytes <= 100_000
        assert "k5" in eng._cache and "k0" not in eng._cache  # least recently used went first
        await eng.close()

    asyncio.run(main())


def slow(started: list[str], name: str, steps: int = 5, delay: float = 0.02) -> Callable[..., Iterator[Rendered]]:
    def produce(should_stop: Callable[[], bool]) -> Iterator[Rendered]:
        started.append(name)
        for i in range(steps):
            if should_stop():
                return
            time.sleep(delay)
            yield Rendered("frame", json.dumps({"step": i}), html=json.dumps({"step": i}))
        yield Rendered("done", "{}", html="{}")

    return produce


def test_queue_reports_positions_honours_order_and_refuses_beyond_bound() -> None:
    async def main() -> None:
        eng = engine(max_running=1, max_queue=2)
        started: list[str] = []
        a = eng.join("a", slow(started, "a"))
        b = eng.join("b", slow(started, "b"))
        c = eng.join("c", slow(started, "c"))
        with pytest.raises(Busy):
            eng.join("d", slow(started, "d"))
        assert (eng.running, eng.queued) == (1, 2)
        ra, rb, rc = await asyncio.gather(collect(a), collect(b), collect(c))
        assert started == ["a", "b", "c"]
        assert [e.position for e in rb if isinstance(e, Queued)] == [1]
        assert [e.position for e in rc if isinstance(e, Queued)] == [2, 1]
        assert not any(isinstance(e, Queued) for e in ra)
        assert all(len(frames(r)) == 6 for r in (ra, rb, rc))
        await eng.close()

    asyncio.run(main())


def test_last_subscriber_leaving_stops_the_job_within_a_step_and_frees_the_slot() -> None:
    fake = FakeText(0.03)

    async def main() -> None:
        eng = engine(max_running=1)
        sub = eng.join("k", text_run(backends_with(text=fake), TextRequest(length=40, steps=40)))
        seen = 0
        async for event in sub.events():
            seen += isinstance(event, Rendered)
            if seen == 3:
                break
        sub.leave()
        await asyncio.sleep(0.15)
        steps_at_leave = fake.steps_run
        assert eng.running == 0 and steps_at_leave <= seen + 1
        await asyncio.sleep(0.1)
        assert fake.steps_run == steps_at_leave  # nothing computes for nobody
        assert eng.cached == 0  # a stopped run is not a trajectory to replay
        # the same request later starts afresh
        assert frames(await collect(eng.join("k", text_run(backends_with(text=fake), TextRequest(length=4, steps=2)))))
        await eng.close()

    asyncio.run(main())


def test_leaving_a_queued_job_removes_it() -> None:
    async def main() -> None:
        eng = engine(max_running=1, max_queue=3)
        started: list[str] = []
        a = eng.join("a", slow(started, "a"))
        b = eng.join("b", slow(started, "b"))
        c = eng.join("c", slow(started, "c"))
        b.leave()
        assert eng.queued == 1 and eng.position(c.job) == 1
        await asyncio.gather(collect(a), collect(c))
        assert started == ["a", "c"]
        await eng.close()

    asyncio.run(main())


def test_a_failing_sampler_reports_a_readable_error() -> None:
    def broken(should_stop: Callable[[], bool]) -> Iterator[Rendered]:
        yield Rendered("frame", "{}", html="{}")
        raise RuntimeError("boom")

    async def main() -> None:
        eng = engine()
        events = await collect(eng.join("k", broken))
        assert isinstance(events[-1], Failed) and "RuntimeError" in events[-1].message
        assert eng.running == 0 and eng.cached == 0
        await eng.close()

    asyncio.run(main())


def test_close_stops_running_jobs_and_refuses_new_ones() -> None:
    fake = FakeText(0.02)

    async def main() -> None:
        eng = engine()
        sub = eng.join("k", text_run(backends_with(text=fake), TextRequest(length=50, steps=50)))
        task = asyncio.create_task(collect(sub))
        await asyncio.sleep(0.05)
        await eng.close()
        events = await asyncio.wait_for(task, 2)
        assert isinstance(events[-1], Failed) and "server stopped" in events[-1].message
        with pytest.raises(ShuttingDown):
            eng.join("other", text_run(backends_with(text=fake), TextRequest()))

    asyncio.run(main())


def test_a_refused_request_says_why_and_is_a_client_error() -> None:
    def refuses(should_stop: Callable[[], bool]) -> Iterator[Rendered]:
        raise Refused("steps must be between 1 and 1000")
        yield Rendered("frame", "{}", html="{}")

    async def main() -> None:
        eng = engine()
        events = await collect(eng.join("k", refuses))
        assert events[-1] == Failed("steps must be between 1 and 1000", refused=True)
        assert eng.running == 0 and eng.cached == 0
        await eng.close()

    asyncio.run(main())


def test_any_other_error_in_a_sampler_is_a_server_fault() -> None:
    def breaks(should_stop: Callable[[], bool]) -> Iterator[Rendered]:
        raise ValueError("shapes do not match")  # a bug, not the client's doing
        yield Rendered("frame", "{}", html="{}")

    async def main() -> None:
        eng = engine()
        events = await collect(eng.join("k", breaks))
        assert isinstance(events[-1], Failed) and not events[-1].refused
        assert "ValueError" in events[-1].message and "shapes" not in events[-1].message
        await eng.close()

    asyncio.run(main())


def test_a_failing_renderer_stops_the_job_and_reports_a_readable_error() -> None:
    steps: list[int] = []

    def render() -> Rendered:
        return Rendered("frame", "{}", html="{}")

    def render_with_a_bug() -> Rendered:
        return Rendered("frame", "{}", html=str(1 / 0))

    def produce(should_stop: Callable[[], bool]) -> Iterator[Callable[[], Rendered]]:
        for i in range(50):
            if should_stop():
                return
            steps.append(i)
            time.sleep(0.005)
            yield render if i < 2 else render_with_a_bug

    async def main() -> None:
        eng = engine()
        events = await collect(eng.join("k", produce))
        assert len(frames(events)) == 2 and isinstance(events[-1], Failed)
        assert "ZeroDivisionError" in events[-1].message and len(steps) < 10  # the sampler stopped within a step
        assert eng.running == 0 and eng.cached == 0
        await eng.close()

    asyncio.run(main())


def test_a_json_only_run_is_cached_as_strings_and_an_html_replay_gets_the_same_html(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = itertools.count()
    monkeypatch.setattr(render_module, "perf_counter", lambda: next(clock) * 0.01)  # same ms_per_step each run
    request = TextRequest(length=8, steps=4, seed=3)

    async def main() -> None:
        eng = engine()
        produce = text_run(backends_with(text=FakeText()), request)
        plain = [e for e in await collect(eng.join("k", produce, html=False)) if isinstance(e, Rendered)]
        assert len(plain) == 6
        # Once finished, the HTML was rendered (after the last frame) and the pending renders dropped: the
        # cache holds strings only, and counts them exactly.
        assert all(m.html_ready and m._make_html is None for m in plain)
        assert eng.cached_bytes == sum(m.nbytes for m in plain)
        replay = eng.join("k", produce, html=True)
        assert replay.replay
        with replay:
            html = [e.html async for e in replay.events() if isinstance(e, Rendered)]

        other = engine()  # the same run computed for an html client from the start
        first = [
            e
            for e in await collect(other.join("k", text_run(backends_with(text=FakeText()), request)))
            if isinstance(e, Rendered)
        ]
        assert all(m.html_ready for m in first)  # rendered in the render thread
        assert [m.html for m in first] == html and [m.json for m in first] == [m.json for m in plain]
        assert json.loads(html[1])["content"].startswith('<article class="frame text-frame"')
        await eng.close()
        await other.close()

    asyncio.run(main())


def test_admission_is_by_estimated_wait_with_the_edge_admitted() -> None:
    async def main() -> None:
        # One slot, 1 s per job until measured: the job at queue position p waits about p seconds.
        eng = engine(max_running=1, max_queue=100, max_wait_seconds=3, initial_job_seconds=1.0)
        started: list[str] = []
        subs = [eng.join(key, slow(started, key)) for key in "abcd"]  # a runs; b, c, d wait 1, 2, 3 s
        assert eng.queued == 3 and [eng.estimated_wait(p) for p in (1, 2, 3)] == [1.0, 2.0, 3.0]
        with pytest.raises(Busy) as refused:  # position 4 would wait 4 s > 3 s
            eng.join("e", slow(started, "e"))
        assert refused.value.wait == 4.0 and refused.value.retry_after == 1.0
        events = await asyncio.gather(*(collect(s) for s in subs))
        etas = [[(e.position, e.eta) for e in ev if isinstance(e, Queued)] for ev in events]
        assert etas[0] == [] and etas[1][0] == (1, 1.0) and etas[3][0] == (3, 3.0)  # as they joined
        assert [p for p, _ in etas[3]] == [3, 2, 1]  # told again each time the line moves
        assert 0 < eng.seconds_per_job < 1.0  # measured now: the four fast jobs replaced the 1 s guess's weight
        await eng.close()

    asyncio.run(main())


def test_the_queue_cap_still_bounds_memory_whatever_the_wait() -> None:
    async def main() -> None:
        eng = engine(max_running=1, max_queue=1, max_wait_seconds=1e9)
        started: list[str] = []
        a, b = eng.join("a", slow(started, "a")), eng.join("b", slow(started, "b"))
        with pytest.raises(Busy):
            eng.join("c", slow(started, "c"))
        await asyncio.gather(collect(a), collect(b))
        await eng.close()

    asyncio.run(main())


def test_a_waiting_job_costs_little_memory() -> None:
    import tracemalloc

    async def main() -> None:
        eng = engine(max_running=1, max_queue=10_000, max_wait_seconds=1e9)
        backends = backends_with(text=FakeText(0.0))
        busy = eng.join("running", slow([], "running"))
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        waiting = [eng.join(f"k{i}", text_run(backends, TextRequest(seed=i))) for i in range(1000)]
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        assert grown / 1000 < 4096, f"{grown / 1000:.0f} bytes per waiting job"  # measured: about 1.7 KB
        for sub in waiting:
            sub.leave()
        await collect(busy)
        await eng.close()

    asyncio.run(main())
