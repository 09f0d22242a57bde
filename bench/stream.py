"""Cost of streaming: the same seeded sampler run bare in a loop vs streamed over a websocket.

    python bench/stream.py [--models checkpoints|fake] [--repeats 5] [--threads 1]

Prints one JSON line: for text and image, and for both wire formats (`json`: `?format=json`, what a
notebook reads; `html`: the default, what the browser's htmx reads, with the rendered fragment), the time to
first frame, streamed total, bare total, and their ratio (goal <= 1.05). The server runs one job at a time
with the same torch thread count as the bare loop, so the difference is the web layer: rendering, JSON, the
socket, the event loop. Bare and streamed runs alternate after one warm-up each, with a fresh seed each
time (the replay cache must not answer), and medians are reported, so background load hits both alike.

`sampler_ms` is the server's own sampler time during the streamed run (the sum of the frames'
`ms_per_step`): `streamed_ms - sampler_ms` is what the web layer adds on the critical path, and
`sampler_ms - bare_ms` is how much the sampler itself slowed down beside the web layer's threads (on a
machine with a free core, rendering overlaps the sampler; on a saturated one it takes CPU from it).
`cpu_ratio` is the server's CPU time for a streamed run over the bare loop's: the web layer's cost in CPU,
which background load disturbs far less than wall time, and which is what a saturated machine pays. The
server's CPU is read per thread from /proc (schedstat, nanoseconds; /proc/PID/stat counts 10 ms ticks,
~2% of a run): the server's threads are fixed pools, so none ends mid-run and loses its count.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from common import cpu_seconds, emit, median, server, stream


def thread_cpu(pid: int) -> dict[str, float] | None:
    """CPU seconds per thread of a process (Linux schedstat), or None where the kernel does not say."""
    out = {}
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out[task.name] = int((task / "schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None
    return out


def cpu_since(pid: int, before: dict[str, float] | None, ticks_before: float) -> float:
    """The server's CPU seconds since `before`: per-thread ns where available, else whole-process ticks."""
    after = thread_cpu(pid)
    if before is None or after is None:
        return cpu_seconds(pid) - ticks_before
    return sum(seconds - before.get(tid, 0.0) for tid, seconds in after.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="checkpoints", choices=["checkpoints", "fake"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, bare loop and server job alike")
    args = parser.parse_args()

    import torch

    from app.backends.load import load_backends
    from app.settings import Settings
    from models.image.request import ImageRequest
    from models.text.decoding import TextRequest

    torch.set_num_threads(args.threads)
    backends = load_backends(Settings(models=args.models))
    requests: dict[str, dict[str, Any]] = {
        "text": {"prompt": "Once upon a time", "length": 64, "steps": 32},
        "image": {"digit": 3, "sampler": "ddim", "steps": 50},
    }
    formats = ("json", "html")

    def bare(kind: str, request: dict[str, Any]) -> tuple[float, float]:
        """Wall and CPU seconds of the sampler run in a plain loop."""
        backend = backends.text if kind == "text" else backends.image
        parsed = TextRequest(**request) if kind == "text" else ImageRequest(**request)
        started, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            for _frame in backend.sample(parsed):  # type: ignore[arg-type]
                pass
        return time.perf_counter() - started, time.process_time() - cpu

    def streamed(url: str, request: dict[str, Any], pid: int) -> dict[str, Any]:
        threads, ticks = thread_cpu(pid), cpu_seconds(pid)
        run = asyncio.run(stream(url, request))
        assert run["ok"], run
        return {**run, "cpu": cpu_since(pid, threads, ticks)}

    result: dict[str, Any] = {
        "bench": "stream",
        "models": args.models,
        "threads": args.threads,
        "repeats": args.repeats,
        "untrained": backends.untrained,
    }
    with server(models=args.models, max_running=1, torch_threads=args.threads) as base:
        ws = base.replace("http", "ws")
        urls = {fmt: {kind: f"{ws}/ws/{kind}?format={fmt}" for kind in requests} for fmt in formats}
        for kind, request in requests.items():
            bare(kind, {**request, "seed": 999})
            for fmt in formats:
                asyncio.run(stream(urls[fmt][kind], {**request, "seed": 998 - len(fmt)}))
            bares: list[tuple[float, float]] = []
            runs: dict[str, list[dict[str, Any]]] = {fmt: [] for fmt in formats}
            for i in range(args.repeats):
                bares.append(bare(kind, {**request, "seed": 1000 + i}))
                for j, fmt in enumerate(formats):
                    runs[fmt].append(streamed(urls[fmt][kind], {**request, "seed": 2000 + 10 * i + j}, base.pid))
            bare_s, bare_cpu = median([b[0] for b in bares]), median([b[1] for b in bares])
            result[kind] = {
                "steps": request["steps"],
                "bare_ms": round(bare_s * 1000, 1),
                "bare_cpu_ms": round(bare_cpu * 1000, 1),
            }
            for fmt in formats:
                streamed_s = median([r["total"] for r in runs[fmt]])
                result[kind][fmt] = {
                    "first_frame_ms": round(median([r["first"] for r in runs[fmt]]) * 1000, 1),
                    "streamed_ms": round(streamed_s * 1000, 1),
                    "sampler_ms": round(median([r["sampler_ms"] for r in runs[fmt]]), 1),
                    "ratio": round(streamed_s / bare_s, 3),
                    "cpu_ms": round(median([r["cpu"] for r in runs[fmt]]) * 1000, 1),
                    "cpu_ratio": round(median([r["cpu"] for r in runs[fmt]]) / bare_cpu, 3),
                }
    emit(result)


if __name__ == "__main__":
    main()
