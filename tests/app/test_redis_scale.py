"""The engine on Redis (THEATER_REDIS_URL): web replicas and workers as real processes on fake models.

Needs Debian's `redis-server` and `nginx` (`make services` installs them; `make test` runs it): missing, these
tests skip, or fail where CI is set. Every wait has a timeout and every process is stopped in `finally`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import websockets
from redis.typing import EncodableT, FieldT

from app.engine.interface import Unavailable, run_key
from app.engine.redis_keys import GROUP, Keys, run_id, worker_member
from app.engine.redis_queue import UNREACHABLE_MESSAGE
from app.engine.redis_replica import NO_WORKERS_MESSAGE, RedisEngine
from app.engine.wait import admission_wait, estimated_wait
from app.settings import Settings
from models.text.decoding import TextRequest
from tests.app.cluster import Cluster, cluster, find_binary, get_json, nginx, wait_for
from tests.app.live import live_server
from tests.ci import skip_unless_ci

CLIENT_TIMEOUT = 30.0  # seconds any one client may take, start to close


def need(name: str) -> str:
    binary = find_binary(name)
    if binary:
        return binary
    skip_unless_ci(f"{name} is not installed: run `make services` (Debian's redis-server and nginx) for the scale-out tests")


@dataclass
class Run:
    raw: list[str]
    code: int | None
    reason: str
    done_at: float | None = None  # time.monotonic() when `done` arrived

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.raw]

    @property
    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    @property
    def steps(self) -> list[int]:
        return [m["step"] for m in self.messages if m["type"] == "frame"]


async def client(
    url: str, request: dict[str, Any], timeout: float = CLIENT_TIMEOUT, first_frame: asyncio.Event | None = None
) -> Run:
    async def talk() -> Run:
        async with websockets.connect(url, max_size=None, open_timeout=10, close_timeout=5) as ws:
            await ws.send(json.dumps(request))
            raw: list[str] = []
            done_at = None
            try:
                async for text in ws:
                    assert isinstance(text, str)
                    raw.append(text)
                    kind = json.loads(text)["type"]
                    if kind == "frame" and first_frame is not None:
                        first_frame.set()
                    if kind == "done":
                        done_at = time.monotonic()
            except websockets.ConnectionClosed:
                pass
            return Run(raw, ws.close_code, ws.close_reason or "", done_at)

    return await asyncio.wait_for(talk(), timeout)


def sync_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2)


def counter(group: Cluster, name: str) -> int:
    return int(sync_redis(group.redis.url).get(Keys().count(name)) or 0)


@pytest.fixture(scope="module")
def scale() -> Iterator[Cluster]:
    """Two web replicas and two workers on one Redis, shared by the tests that leave them as they were."""
    with cluster(need("redis-server"), replicas=2, workers=2) as group:
        yield group


# ---------------------------------------------------------------------------------------------------------
# Admission by wait, with Redis (the engine in this process, no worker consuming: the line only grows)


def test_the_wait_estimate_matches_the_in_process_engines() -> None:
    assert admission_wait(running=1, queued=0, slots=2, seconds_per_job=4) == 0  # a free slot: no wait
    assert admission_wait(running=2, queued=0, slots=2, seconds_per_job=4) == 2  # first in line: a job's half
    assert admission_wait(running=2, queued=3, slots=2, seconds_per_job=4) == 8
    assert estimated_wait(0, 4, 2) == 0 and estimated_wait(5, 4, 2) == 10
    assert estimated_wait(1, 4, 0) == 4  # no slot known: count one


def test_admission_edge_and_queued_positions_with_redis(scale: Cluster) -> None:
    keys = Keys("admission")  # a namespace no worker serves
    store = sync_redis(scale.redis.url)
    store.zadd(keys.workers, {worker_member("fake", 2): time.time() + 300})  # 2 slots
    store.lpush(keys.durations, 4.0)  # 4 s a job
    store.xgroup_create(keys.jobs, GROUP, id="0", mkstream=True)
    settings = Settings(redis_url=scale.redis.url, redis_prefix=keys.prefix, max_wait_seconds=10, redis_timeout_seconds=1)

    async def first_event(engine: RedisEngine, seed: int) -> Any:
        """What a client hears first: its place in line, a refusal, or (a free slot) nothing yet."""
        request = TextRequest(length=4, steps=2, seed=seed)
        subscription = engine.run("text", request)
        feed = subscription.feed
        deadline = time.monotonic() + 5
        while not (feed.generation or feed.failure) and time.monotonic() < deadline:  # admitted, or not
            await asyncio.sleep(0.01)
        if not (feed.failure or feed.position):
            return None
        return await asyncio.wait_for(anext(subscription.events()), 5)

    async def main() -> None:
        engine = RedisEngine.from_settings(settings)
        try:
            firsts = [await first_event(engine, seed) for seed in range(6)]
        finally:
            await engine.close()
        # slots free for the first two: no place in line; then waits of 6, 8 and 10 s (admitted: the bound is
        # inclusive, as in process); the sixth would wait 12 s > 10 s: busy, try again in about 2 s.
        assert firsts[0] is None and firsts[1] is None
        assert [(e.position, e.eta) for e in firsts[2:5]] == [(1, 2.0), (2, 4.0), (3, 6.0)]
        assert isinstance(firsts[5], Unavailable) and firsts[5].message.startswith("busy: this run would wait about 12 s")
        assert firsts[5].retry_after == 2.0 and store.xlen(keys.jobs) == 5

        store.delete(keys.workers)  # nobody to compute: a clear refusal, not an endless wait
        engine = RedisEngine.from_settings(settings)
        try:
            event = await first_event(engine, 99)
        finally:
            await engine.close()
        assert isinstance(event, Unavailable) and event.message == NO_WORKERS_MESSAGE

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------------------
# Two replicas, two workers


def test_a_run_made_through_one_replica_replays_through_the_other_without_a_job(scale: Cluster) -> None:
    request = {"prompt": "A replay", "length": 12, "steps": 6, "seed": 101}
    started = counter(scale, "jobs_started")
    first = asyncio.run(client(scale.ws(0), request))
    assert first.code == 1000 and first.types[-1] == "done" and first.steps == list(range(7))
    assert counter(scale, "jobs_started") == started + 1
    again = asyncio.run(client(scale.ws(1), request))
    assert again.raw == first.raw and again.code == 1000  # byte for byte: the same stream
    html = asyncio.run(client(scale.ws(1, fmt="html"), request))  # the html variant was stored with it
    assert html.code == 1000 and all("content" in m for m in html.messages)
    assert counter(scale, "jobs_started") == started + 1


def test_messages_are_the_in_process_engines(scale: Cluster) -> None:
    """Workers run the same producers and renderers: only the measured times differ."""
    request = {"prompt": "Same as ever", "length": 10, "steps": 5, "seed": 7}

    def untimed(run: Run) -> list[dict[str, Any]]:
        return [{k: v for k, v in m.items() if k not in ("ms_per_step", "content")} for m in run.messages]

    on_redis = asyncio.run(client(scale.ws(0), request))
    with live_server(step_seconds=0.01) as live:
        in_process = asyncio.run(client(live.ws("text"), request))
    assert on_redis.code == in_process.code == 1000 and untimed(on_redis) == untimed(in_process)


def test_fifty_clients_of_one_request_across_two_replicas_start_one_job(scale: Cluster) -> None:
    request = {"prompt": "A lecture hall", "length": 20, "steps": 20, "seed": 202}
    started = counter(scale, "jobs_started")

    async def main() -> list[Run]:
        return await asyncio.gather(*(client(scale.ws(i % 2), request) for i in range(50)))

    runs = asyncio.run(main())
    assert all(run.code == 1000 and run.types[-1] == "done" for run in runs)
    frames = [[m for m in run.raw if '"type":"queued"' not in m] for run in runs]
    assert all(f == frames[0] for f in frames) and runs[0].steps == list(range(21))
    assert counter(scale, "jobs_started") == started + 1


def test_nginx_in_front_of_both_replicas_carries_websockets(scale: Cluster) -> None:
    binary = need("nginx")
    with nginx(binary, [proc.port for proc in scale.replicas]) as port:
        status, body = get_json(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and body["workers"] == 2
        runs = asyncio.run(client(f"ws://127.0.0.1:{port}/ws/text?format=json", {"length": 8, "steps": 8, "seed": 303}))
        assert runs.code == 1000 and runs.types[-1] == "done" and runs.steps == list(range(9))
        page = asyncio.run(client(f"ws://127.0.0.1:{port}/ws/image", {"steps": 4, "seed": 3}))  # html, another demo
        assert page.code == 1000 and page.types[-1] == "done"


def test_workers_refuse_a_job_over_the_web_limits_whoever_enqueued_it(scale: Cluster) -> None:
    """A job written to Redis directly (not through a replica's checks) is checked again before any sampling."""
    store, keys = sync_redis(scale.redis.url), Keys()
    request = TextRequest(length=8, steps=100_000, seed=1)  # over THEATER_MAX_TEXT_STEPS
    key = run_key("text", request)
    run, ticket = run_id(key), int(store.incr(keys.seq))
    store.set(keys.owner(run), ticket, ex=60)
    fields: dict[FieldT, EncodableT] = {
        "run": run,
        "key": key,
        "kind": "text",
        "request": request.model_dump_json(),
        "ticket": ticket,
    }
    store.xadd(keys.jobs, fields)
    entries = wait_for(lambda: store.xrange(keys.run(run)), 10, "the worker's answer", scale.workers)
    assert [(e[0], e[1]["type"], e[1]["refused"]) for e in entries] == [(f"{ticket}-1", "failed", "1")]
    assert "steps 100000 is over the limit" in entries[0][1]["message"]
    wait_for(lambda: not store.exists(keys.owner(run)), 5, "the claim dropped (after the answer)", scale.workers)


# ---------------------------------------------------------------------------------------------------------
# Failures: a worker killed mid-run, Redis going away


def holder_pid(group: Cluster) -> int:
    """The process id of the worker holding the one pending job (consumer names are `<host>-<pid>`)."""
    pending = sync_redis(group.redis.url).xpending_range(Keys().jobs, GROUP, "-", "+", 10)
    assert len(pending) == 1, pending
    return int(str(pending[0]["consumer"]).rsplit("-", 1)[1])


@pytest.mark.slow
def test_a_worker_killed_mid_run_its_run_completes_elsewhere_each_frame_once_in_order() -> None:
    with cluster(need("redis-server"), replicas=2, workers=2, fake_step_ms=60) as group:
        request = {"prompt": "Kill", "length": 30, "steps": 30, "seed": 404}
        killed_at: list[float] = []

        async def main() -> list[Run]:
            first_frame = asyncio.Event()
            tasks = [asyncio.create_task(client(group.ws(i % 2), request, first_frame=first_frame)) for i in range(3)]
            await asyncio.wait_for(first_frame.wait(), 10)
            await asyncio.sleep(0.3)  # a few frames out
            pid = holder_pid(group)
            victim = next(w for w in group.workers if w.pid == pid)
            victim.kill()  # SIGKILL: no goodbye, its claim just stops being renewed
            killed_at.append(time.monotonic())
            return await asyncio.gather(*tasks)

        runs = asyncio.run(main())
        for run in runs:
            assert run.code == 1000 and run.types[-1] == "done", (run.types, run.reason)
            assert run.steps == list(range(31))  # every frame once, in order
        assert counter(group, "jobs_started") == 1 and counter(group, "jobs_recovered") == 1
        took = max(run.done_at or 0 for run in runs) - killed_at[0]
        print(f"\nkill -9 to done elsewhere: {took:.2f} s (claim timeout 2 s, run 1.8 s)")
        assert took < 15


@pytest.mark.slow
def test_redis_going_away_gives_clear_errors_then_service_resumes() -> None:
    with cluster(need("redis-server"), replicas=2, workers=2, fake_step_ms=50) as group:

        async def during_outage() -> tuple[Run, Run, float]:
            first_frame = asyncio.Event()
            streaming = asyncio.create_task(
                client(group.ws(0), {"length": 60, "steps": 60, "seed": 505}, first_frame=first_frame)
            )
            await asyncio.wait_for(first_frame.wait(), 10)
            group.redis.stop()
            stopped = time.monotonic()
            cut = await streaming
            took = time.monotonic() - stopped
            fresh = await client(group.ws(1), {"length": 4, "steps": 4, "seed": 506}, timeout=10)
            return cut, fresh, took

        cut, fresh, took = asyncio.run(during_outage())
        for run in (cut, fresh):  # an error that says so, and "try again later"
            assert run.code == 1013 and run.types[-1] == "error", (run.types, run.code, run.reason)
            assert run.messages[-1]["message"] == UNREACHABLE_MESSAGE and "unreachable" in run.reason
        assert "frame" in cut.types and took < 5
        for i in range(2):
            status, body = get_json(group.http(i) + "/readyz")
            assert status == 503 and body["status"] == "run queue unreachable"

        group.redis.start()  # empty, on the same port: nobody restarts the replicas or the workers
        group.wait_ready(workers=2, timeout=30)
        for i in range(2):
            # As a client told "try again" would: right at recovery a replica may still answer from the moment
            # before the workers re-registered; within seconds every replica serves.
            deadline = time.monotonic() + 10
            while True:
                run = asyncio.run(client(group.ws(i), {"length": 6, "steps": 6, "seed": 507 + i}))
                if run.reason != NO_WORKERS_MESSAGE or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert run.code == 1000 and run.types[-1] == "done" and run.steps == list(range(7)), (run.code, run.reason)
        assert all(proc.alive() for proc in [*group.replicas, *group.workers])


def test_a_training_run_trains_on_a_worker_and_both_replicas_watch_one_job(scale: Cluster) -> None:
    """/train on Redis: the worker trains the live twins (the served experiment, 12 seconds), two viewers on two
    replicas share the one job, and it ends with the measured summary."""
    request = {"seconds": 12, "seed": 303}  # a cold worker spends seconds on its first point (torch warming up)
    started = counter(scale, "jobs_started")

    async def main() -> list[Run]:
        return await asyncio.gather(*(client(scale.ws(i, kind="train"), request) for i in range(2)))

    runs = asyncio.run(main())
    assert all(run.code == 1000 and run.types[-1] == "done" for run in runs), [run.types for run in runs]
    assert runs[0].raw == runs[1].raw and len(runs[0].steps) >= 2
    done = runs[0].messages[-1]
    assert done["ar_best"] < runs[0].messages[0]["ar_held_out"] and done["recorded"] is None
    assert counter(scale, "jobs_started") == started + 1
