"""The same seeded request from many clients at once: all served, the compute done once.

    python bench/replay.py [--clients 500] [--models checkpoints|fake] [--format json|html]

Prints one JSON line: completed, errors, jobs the engine started (goal: 1), how many clients joined the
run in flight and how many were answered from the replay cache, p50/p95 time to first frame, wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from common import emit, get_json, percentile, server, stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--models", default="checkpoints", choices=["checkpoints", "fake"])
    parser.add_argument("--format", default="json", choices=["json", "html"], help="wire format the clients ask for")
    parser.add_argument("--steps", type=int, default=32)
    args = parser.parse_args()
    request = {"prompt": "Once upon a time", "length": 64, "steps": args.steps, "seed": 42}

    async def everyone(url: str) -> tuple[list[dict[str, Any]], float]:
        started = time.perf_counter()

        async def one() -> dict[str, Any]:
            try:
                return await stream(url, request)
            except Exception as error:
                return {"ok": False, "error": repr(error)[:200], "first": None}

        results = await asyncio.gather(*(one() for _ in range(args.clients)))
        return list(results), time.perf_counter() - started

    with server(models=args.models, max_connections_per_client=max(500, args.clients + 10)) as base:
        results, wall = asyncio.run(everyone(f"{base.replace('http', 'ws')}/ws/text?format={args.format}"))
        stats = get_json(base + "/stats")
    done = [r for r in results if r["ok"]]
    firsts = [r["first"] * 1000 for r in done if r["first"] is not None]
    engine = stats["engine"]
    emit(
        {
            "bench": "replay",
            "models": args.models,
            "format": args.format,
            "clients": args.clients,
            "completed": len(done),
            "errors": len(results) - len(done),
            "jobs_started": engine["jobs_started"],
            "joined_in_flight": engine["joined_inflight"],
            "cache_hits": engine["cache_hits"],
            "first_frame_ms": {"p50": round(percentile(firsts, 0.5), 1), "p95": round(percentile(firsts, 0.95), 1)},
            "wall_s": round(wall, 2),
            "threads": stats["threads"],
            "rss_mb": round(stats["rss_bytes"] / 2**20, 1),
        }
    )


if __name__ == "__main__":
    main()
