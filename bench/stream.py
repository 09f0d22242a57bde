"""Cost of streaming: the same seeded sampler run bare in a loop vs streamed over a websocket.

    python bench/stream.py [--models checkpoints|fake] [--repeats 3] [--threads 1]

Prints one JSON line: for text and image, time to first frame, streamed total, bare total, and their
ratio (goal <= 1.05). The server runs one job at a time with the same torch thread count as the bare loop,
so the difference is the web layer: rendering, JSON, the socket, the event loop. Bare and streamed runs
alternate after one warm-up each, and medians are reported, so background load hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from common import emit, median, server, stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="checkpoints", choices=["checkpoints", "fake"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, bare loop and server job alike")
    args = parser.parse_args()

    import torch

    from app.backends import load_backends
    from app.protocol import ImageRequest, TextRequest
    from app.settings import Settings

    torch.set_num_threads(args.threads)
    backends = load_backends(Settings(models=args.models))
    requests: dict[str, dict[str, Any]] = {
        "text": {"prompt": "Once upon a time", "length": 64, "steps": 32},
        "image": {"digit": 3, "sampler": "ddim", "steps": 50},
    }

    def bare(kind: str, request: dict[str, Any]) -> float:
        backend = backends.text if kind == "text" else backends.image
        parsed = TextRequest(**request) if kind == "text" else ImageRequest(**request)
        started = time.perf_counter()
        with torch.inference_mode():
            for _frame in backend.sample(parsed):  # type: ignore[arg-type]
                pass
        return time.perf_counter() - started

    result: dict[str, Any] = {
        "bench": "stream", "models": args.models, "threads": args.threads, "repeats": args.repeats,
        "untrained": backends.untrained,
    }
    with server(models=args.models, max_running=1, torch_threads=args.threads) as base:
        ws = base.replace("http", "ws")
        for kind, request in requests.items():
            url = f"{ws}/ws/{kind}?format=json"
            bare(kind, {**request, "seed": 999})
            asyncio.run(stream(url, {**request, "seed": 999}))
            firsts, streamed, bares = [], [], []
            for i in range(args.repeats):
                seeded = {**request, "seed": 1000 + i}  # a fresh seed each time: the cache must not answer
                bares.append(bare(kind, seeded))
                run = asyncio.run(stream(url, seeded))
                assert run["ok"], run
                firsts.append(run["first"])
                streamed.append(run["total"])
            result[kind] = {
                "steps": request["steps"],
                "first_frame_ms": round(median(firsts) * 1000, 1),
                "streamed_ms": round(median(streamed) * 1000, 1),
                "bare_ms": round(median(bares) * 1000, 1),
                "ratio": round(median(streamed) / median(bares), 3),
            }
    emit(result)


if __name__ == "__main__":
    main()
