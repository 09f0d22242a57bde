"""Process health numbers for `/stats` and the benchmarks: event-loop lag, threads, resident memory.

Python work of every sampler step holds the GIL, so a busy pool can delay the event loop (and every socket
on it). `LoopLag` measures that: a task sleeps `interval` seconds and records how late it wakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from pathlib import Path


class LoopLag:
    def __init__(self, interval: float = 0.02, keep: int = 3000) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=keep)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, time.perf_counter() - started - self.interval) * 1000)

    def reset(self) -> None:
        self.samples.clear()

    def summary(self) -> dict[str, float]:
        values = sorted(self.samples)
        if not values:
            return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "samples": 0}

        def pick(q: float) -> float:
            return round(values[min(len(values) - 1, int(q * len(values)))], 2)

        return {"p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(values[-1], 2), "samples": len(values)}


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def thread_count() -> int:
    return threading.active_count()
