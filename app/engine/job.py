"""One run as the in-process engine holds it: its producer, the messages rendered so far, its state and who
watches it. The engine's event loop owns it; sampler and render threads only append messages and flag a wake-up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from app.engine.interface import Producer
from app.render.message import Rendered

State = Literal["queued", "running", "done", "stopped", "failed"]


@dataclass(eq=False)
class Job:
    key: str
    produce: Producer
    frames: list[Rendered] = field(default_factory=list)
    state: State = "queued"
    subscribers: int = 0
    html_subscribers: int = 0  # subscribers of the html format: while > 0, the render thread renders the HTML
    stop: bool = False
    error: str = ""
    refused: bool = False  # the error is the model refusing the request, not a fault
    nbytes: int = 0
    waiter: asyncio.Future[None] | None = None
    wake_pending: bool = False  # a wake-up is already scheduled on the loop (set and cleared under the GIL)
    started_at: float = 0.0  # time.monotonic() when a slot took it
    position: int = 0  # place in the waiting line (1: next), 0 once started or gone; kept by `_renumber`

    @property
    def finished(self) -> bool:
        return self.state in ("done", "stopped", "failed")
