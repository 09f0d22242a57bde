"""What web replicas and workers share about Redis: the client (a timeout on every call), the jobs stream's
consumer group, the capacity snapshot (live workers' slots, recent job durations) and the wait estimate.

Clocks: workers and replicas stamp registrations with their own wall clock (`time.time()`); the lapse times
(seconds) leave room for the skew of NTP-synchronised machines.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.engine.redis_keys import GROUP, Keys, member_slots
from app.engine.wait import INITIAL_JOB_SECONDS, RECENT_JOBS, mean_seconds
from app.settings import Settings

Redis = aioredis.Redis

HEARTBEAT_SECONDS = 1.0  # replicas refresh their watchers, workers their registration, this often
WATCH_SECONDS = 10.0  # a replica's watch of a run lapses this long after its last refresh (it left or died)
WORKER_SECONDS = 5.0  # a worker's registration lapses this long after its last refresh
BLOCK_MS = 1000  # the longest blocking read (XREAD / XREADGROUP BLOCK); the socket timeout is added to it
POOL_CONNECTIONS = 32  # Redis connections per process at most (one is a replica's or a worker's blocking read)
FAILED_TTL_SECONDS = 60  # a failed or stopped run's stream lingers this long (its clients read the reason)

# Redis cannot be reached (down, restarting, a network fault): callers tell their clients, then carry on.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
UNREACHABLE_MESSAGE = "the run queue (Redis) is unreachable; try again in a few seconds"


def owner_ttl(settings: Settings) -> int:
    """How long a claim lives without a refresh: several heartbeats, and longer than a worker's grace."""
    return int(max(30.0, 3 * settings.redis_claim_seconds))


def connect(settings: Settings) -> Redis:
    """A client whose every call gives up after `redis_timeout_seconds` (blocking reads after BLOCK_MS more).

    One retry, at once, on a fresh connection: after a Redis restart, the first use of each pooled connection
    fails; a second failure is reported (no backoff: callers tell their clients now, not in 10 s)."""
    timeout = settings.redis_timeout_seconds
    # A bounded pool that makes a command wait (up to the timeout) for a free connection rather than fail: a
    # crowd arriving at once queues its admissions instead of opening a connection each.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=POOL_CONNECTIONS,
        timeout=timeout,
        decode_responses=True,
        socket_timeout=timeout + BLOCK_MS / 1000,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )
    return aioredis.Redis(connection_pool=pool)


Entry = tuple[str, dict[str, str]]  # a stream entry: its id and fields (decoded)


def read_streams(response: Any) -> list[tuple[str, list[Entry]]]:
    """An XREAD / XREADGROUP answer (`[[stream, [(id, fields), ...]], ...]`), typed."""
    return [(str(key), [(str(i), dict(fields or {})) for i, fields in entries]) for key, entries in response or []]


def read_entries(response: Any) -> list[Entry]:
    """The entries of an XREAD / XREADGROUP answer on one stream."""
    streams = read_streams(response)
    return streams[0][1] if streams else []


def is_nogroup(error: Exception) -> bool:
    return isinstance(error, ResponseError) and str(error).startswith("NOGROUP")


async def ensure_group(redis: Redis, keys: Keys) -> None:
    """The jobs stream and its consumer group, from the stream's first entry (after a Redis restart too)."""
    try:
        await redis.xgroup_create(keys.jobs, GROUP, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def delete_if(redis: Redis, key: str, value: str) -> bool:
    """Delete `key` only while it still holds `value` (a claim of ours, not a newer one): WATCH/MULTI, no Lua."""
    async with redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(key)
            if await pipe.get(key) != value:
                await pipe.unwatch()
                return False
            pipe.multi()
            pipe.delete(key)
            await pipe.execute()
            return True
        except WatchError:
            return False


@dataclass(frozen=True)
class Capacity:
    """The live workers and how long a job takes, read from Redis (refreshed each heartbeat)."""

    workers: int = 0
    slots: int = 0  # jobs the live workers compute at once, together
    seconds_per_job: float = INITIAL_JOB_SECONDS
    jobs_started: int = 0
    read_at: float = 0.0  # time.monotonic() of the read; 0: never read


async def read_capacity(redis: Redis, keys: Keys) -> Capacity:
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(keys.workers, "-inf", now)  # registrations that lapsed (killed workers)
        pipe.zrange(keys.workers, 0, -1)
        pipe.lrange(keys.durations, 0, RECENT_JOBS - 1)
        pipe.get(keys.count("jobs_started"))
        _, members, durations, started = await pipe.execute()
    return Capacity(
        workers=len(members),
        slots=sum(member_slots(m) for m in members),
        seconds_per_job=mean_seconds(durations),
        jobs_started=int(started or 0),
        read_at=time.monotonic(),
    )


async def queue_line(redis: Redis, keys: Keys, groups: list[dict[str, Any]], count: int) -> dict[str, int]:
    """run id -> its job's place among the entries the workers' group has not read yet (1: next)."""
    group = next((g for g in groups if g.get("name") == GROUP), None)
    if group is None:
        return {}
    entries = await redis.xrange(keys.jobs, f"({group['last-delivered-id']}", "+", count=count)
    line: dict[str, int] = {}
    for place, (_entry, fields) in enumerate(entries or [], start=1):
        line.setdefault(str((fields or {}).get("run", "")), place)
    return line


async def close_quietly(redis: Redis) -> None:
    with contextlib.suppress(Exception):
        await redis.aclose()
