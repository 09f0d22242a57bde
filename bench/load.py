"""A lecture hall at once: N concurrent websocket clients (distinct seeds, small requests).

    python bench/load.py [--clients 100] [--models checkpoints|fake] [--kind text|image] [--format json|html]
                         [--length 16] [--steps 8] [--waves N] [--redis [--replicas 2] [--workers 2]]

Starts its own server, measures one client alone (steps/s), then N clients at once, and prints one JSON
line: completed, busy (refused: their wait would pass the server's bound), errors, p50/p95 time to first frame
(the wait), the ETA error of the clients that queued (the wait they had minus the wait they were told),
aggregate steps/s and its ratio to one client alone (goal >= 0.9), event-loop lag p99 during the load (goal
<= 20 ms), server threads and RSS before/after.

`--waves N` then sends N more waves of `--clients` sessions each (new seeds, so no cache hits) and adds
`waves`: the server's threads, RSS and replay-cache bytes after each wave, to show whether threads and
memory stay flat over thousands of sessions (the cache is bounded by THEATER_CACHE_BYTES; its growth is
reported apart so it is not mistaken for a leak).

`--redis` runs the engine on Redis (docs/scale-out.md): it starts redis-server, `--replicas` web replicas and
`--workers` workers (`python -m app.worker`, THEATER_MAX_RUNNING jobs each), spreads the clients over the replicas
in turn, and reports the same fields; threads, RSS and loop lag are the first replica's, the engine counts
(jobs_started) all workers'.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from common import emit, get_json, percentile, server, stream

LENGTH = 16  # tokens per text request (--length)


def request_for(kind: str, seed: int, steps: int) -> dict[str, Any]:
    if kind == "text":
        return {"prompt": "Once upon a time", "length": LENGTH, "steps": steps, "seed": seed}
    return {"digit": seed % 10, "sampler": "ddim", "steps": steps, "seed": seed}


async def crowd(urls: list[str], kind: str, clients: int, steps: int, offset: int) -> tuple[list[dict[str, Any]], float]:
    started = time.perf_counter()

    async def one(i: int) -> dict[str, Any]:
        try:
            return await stream(urls[i % len(urls)], request_for(kind, offset + i, steps))  # the replicas in turn
        except Exception as error:  # counted, not fatal: the point is to see them
            return {"ok": False, "error": repr(error)[:200], "first": None, "frames": 0}

    results = await asyncio.gather(*(one(i) for i in range(clients)))
    return list(results), time.perf_counter() - started


@contextlib.contextmanager
def serving(args: argparse.Namespace) -> Iterator[list[str]]:
    """The servers' base URLs: one `python -m app`, or with --redis the replicas of a Redis cluster."""
    if not args.redis:
        with server(models=args.models, prewarm="false") as base:  # default admission: by estimated wait (120 s)
            yield [base]
        return
    from tests.app.cluster import cluster, find_binary  # the scale-out tests' process helpers

    binary = find_binary("redis-server")
    if binary is None:
        raise SystemExit("--redis needs redis-server (make services)")
    with cluster(
        binary,
        replicas=args.replicas,
        workers=args.workers,
        models=args.models,
        prewarm="false",
        redis_claim_seconds=15,
        redis_timeout_seconds=2,
    ) as group:
        yield [group.http(i) for i in range(args.replicas)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--models", default="checkpoints", choices=["checkpoints", "fake"])
    parser.add_argument("--format", default="json", choices=["json", "html"], help="wire format the clients ask for")
    parser.add_argument("--kind", default="text", choices=["text", "image"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--length", type=int, default=16, help="tokens per text request")
    parser.add_argument("--solo", type=int, default=5, help="sequential runs to measure one client alone")
    parser.add_argument("--waves", type=int, default=0, help="further waves of --clients sessions, for threads/RSS")
    parser.add_argument("--redis", action="store_true", help="the engine on Redis: start redis-server, replicas, workers")
    parser.add_argument("--replicas", type=int, default=2, help="with --redis: web replicas (python -m app)")
    parser.add_argument("--workers", type=int, default=2, help="with --redis: workers (python -m app.worker)")
    args = parser.parse_args()
    global LENGTH
    LENGTH = args.length

    with serving(args) as bases:
        base = bases[0]
        urls = [f"{b.replace('http', 'ws')}/ws/{args.kind}?format={args.format}" for b in bases]
        url = urls[0]
        before = get_json(base + "/stats")
        # warm-up, then one client alone, sequentially
        asyncio.run(stream(url, request_for(args.kind, 10**6, args.steps)))
        solo_started = time.perf_counter()
        for i in range(args.solo):
            assert asyncio.run(stream(url, request_for(args.kind, 10**6 + 1 + i, args.steps)))["ok"]
        solo_rate = args.solo * args.steps / (time.perf_counter() - solo_started)
        get_json(base + "/stats?reset=1")
        results, wall = asyncio.run(crowd(urls, args.kind, args.clients, args.steps, offset=0))
        during = get_json(base + "/stats")
        time.sleep(0.5)
        after = get_json(base + "/stats")
        waves = []
        for wave in range(1, args.waves + 1):
            wave_results, wave_wall = asyncio.run(crowd(urls, args.kind, args.clients, args.steps, offset=wave * args.clients))
            time.sleep(0.5)  # let finished sockets and jobs be released before sampling
            now = get_json(base + "/stats", timeout=120)  # a CPU-starved server may answer late
            waves.append(
                {
                    "wave": wave,
                    "sessions": (wave + 1) * args.clients,  # counting the measured crowd above
                    "completed": sum(r["ok"] for r in wave_results),
                    "wall_s": round(wave_wall, 2),
                    "threads": now["threads"],
                    "rss_mb": round(now["rss_bytes"] / 2**20, 1),
                    "cache_mb": round(now["engine"]["cached_bytes"] / 2**20, 2),
                }
            )
        final = get_json(base + "/stats", timeout=120) if waves else after

    done = [r for r in results if r["ok"]]
    firsts = [r["first"] * 1000 for r in done if r["first"] is not None]
    # ETA error: for each client that waited in line, the wait it was told against the wait it had.
    errors = [r["waited"] - r["eta"] for r in done if r["eta"] is not None and r["waited"] is not None]
    rate = len(done) * args.steps / wall
    emit(
        {
            "bench": "load",
            "models": args.models,
            "format": args.format,
            "kind": args.kind,
            "clients": args.clients,
            "steps": args.steps,
            "completed": len(done),
            "busy": sum(r.get("code") == 1013 for r in results),
            "errors": len(results) - len(done),
            "queued": len(errors),
            "eta_error_s": {
                "median": round(percentile(errors, 0.5), 2),  # > 0: waited longer than told
                "p95_abs": round(percentile([abs(e) for e in errors], 0.95), 2),
            }
            if errors
            else None,
            "first_frame_ms": {"p50": round(percentile(firsts, 0.5), 1), "p95": round(percentile(firsts, 0.95), 1)},  # the wait
            "wall_s": round(wall, 2),
            "steps_per_s": round(rate, 1),
            "solo_steps_per_s": round(solo_rate, 1),
            "ratio_to_solo": round(rate / solo_rate, 3),
            "loop_lag_ms": during["loop_lag"],
            "threads": {"before": before["threads"], "after": after["threads"]},
            "rss_mb": {"before": round(before["rss_bytes"] / 2**20, 1), "after": round(after["rss_bytes"] / 2**20, 1)},
            "engine": final["engine"],
            **({"waves": waves} if waves else {}),
        }
    )


if __name__ == "__main__":
    main()
