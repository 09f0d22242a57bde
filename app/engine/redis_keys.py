"""The names of everything the Redis engine keeps in Redis, and the ids of the messages in a run's stream.

    {p}:jobs                  stream: one entry per job (run, key, kind, request, ticket); consumer group `workers`
    {p}:jobs:seq              counter: tickets, one per claim (a run's generation, below)
    {p}:workers               sorted set: member "<name>|<slots>", score = when its registration lapses
    {p}:durations             list: the compute seconds of the last finished jobs (the wait estimate's unit)
    {p}:count:<name>          counters: jobs_started, jobs_recovered (tests and benchmarks read them)
    {p}:run:<id>              stream: the run's messages = the replay cache and the fan-out
    {p}:run:<id>:owner        string: the generation in flight (SET NX inside WATCH/MULTI: one claim at a time)
    {p}:run:<id>:watchers     sorted set: member = a replica with clients of the run, score = when that lapses
    {p}:bell:<replica>        stream (one entry): rung to wake a replica's blocking read when it follows a new run

`<id>` is the sha256 of the canonical request (its JSON can be long). A run's messages have the stream ids
`<generation>-<index>` (index 1, 2, ...): a generation is the ticket of the claim that started it, so each
message of a generation is written once (Redis refuses an id not above the stream's last: a second writer,
such as a worker thought dead, is fenced off), and a later generation of the same run sorts after it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

GROUP = "workers"
TERMINAL_FAILURES = ("failed", "stopped", "busy")  # message types that end a run without a `done`: no replay
MAX_SEQ = 2**64 - 1  # the largest sequence part of a stream id


@dataclass(frozen=True)
class Keys:
    prefix: str = "theater"

    @property
    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def seq(self) -> str:
        return f"{self.prefix}:jobs:seq"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def durations(self) -> str:
        return f"{self.prefix}:durations"

    def count(self, name: str) -> str:
        return f"{self.prefix}:count:{name}"

    def run(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def owner(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:owner"

    def watchers(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:watchers"

    def bell(self, replica: str) -> str:
        return f"{self.prefix}:bell:{replica}"


def run_id(key: str) -> str:
    """The run's name in Redis: the sha256 of its canonical request."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def message_id(generation: int, index: int) -> str:
    """The stream id of message `index` (1-based) of `generation`."""
    return f"{generation}-{index}"


def parse_id(entry_id: str) -> tuple[int, int]:
    """'12-3' -> (generation 12, index 3)."""
    generation, _, index = entry_id.partition("-")
    return int(generation), int(index)


def worker_member(name: str, slots: int) -> str:
    return f"{name}|{slots}"


def member_slots(member: str) -> int:
    """The slots a worker's registration announces (0 if unreadable)."""
    _, _, slots = member.rpartition("|")
    return int(slots) if slots.isdigit() else 0
