"""The wait estimate both engines give a queued client and decide admission by (in process, and on Redis)."""

from __future__ import annotations

from collections.abc import Iterable

RECENT_JOBS = 32  # finished jobs the time-per-job estimate averages over
INITIAL_JOB_SECONDS = 2.0  # the estimate before any job has finished


def mean_seconds(durations: Iterable[float | str], initial: float = INITIAL_JOB_SECONDS) -> float:
    """The mean compute time of the recent finished jobs (runs differ: a 1000-step DDPM and a 16-step race);
    `initial` before any has finished."""
    seconds = [float(d) for d in durations]
    return sum(seconds) / len(seconds) if seconds else initial


def estimated_wait(position: int, seconds_per_job: float, slots: int) -> float:
    """Seconds until the job at queue `position` (1: next) starts: the `position` jobs that free a slot before it
    (the running ones are half done on average, the queued ones whole) share the `slots`."""
    if position <= 0:
        return 0.0
    return position * seconds_per_job / max(1, slots)


def admission_wait(running: int, queued: int, slots: int, seconds_per_job: float) -> float:
    """The wait of a job enqueued now: none while a slot is free for it, else its place behind the queued ones."""
    if running + queued < slots:
        return 0.0
    return estimated_wait(queued + 1, seconds_per_job, slots)
