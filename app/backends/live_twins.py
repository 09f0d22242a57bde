"""The live twins (`/train`) as a backend: no checkpoint, two tiny networks trained afresh on the request's text.

It holds the experiment's configuration, so the tests can serve a smaller, step-bounded one (`LiveTwins.small`)
and get the same points on any machine; the served one is `models.text.live_train.LiveConfig` as measured in
docs/live-train.md. torch is imported only when a run trains."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from models.text.live_request import TrainRequest, training_text

ShouldStop = Callable[[], bool]


@dataclass
class LiveTwins:
    config: dict[str, Any] = field(default_factory=dict)  # LiveConfig overrides ({}: the measured default)
    max_steps: int | None = None  # a step bound besides the request's seconds (the tests': same points anywhere)
    name: str = "live-twins"
    trained: bool = True  # nothing to load: the run itself is the training
    description: str = (
        "two tiny transformers of the product's class, an autoregressive twin and a masked-diffusion model, trained "
        "from scratch on the chosen text while you watch"
    )

    @classmethod
    def small(cls, max_steps: int = 12) -> LiveTwins:
        """Width 16, one layer, a point every 4 steps: a run of a fraction of a second, bounded by steps."""
        return cls(
            config={"width": 16, "depth": 1, "heads": 1, "batch": 4, "eval_every": 4, "eval_windows": 4, "sample_every": 2},
            max_steps=max_steps,
        )

    def live_config(self) -> Any:
        from models.text.live_train import LiveConfig

        return LiveConfig(**self.config)

    def train(self, request: TrainRequest, should_stop: ShouldStop | None = None) -> Iterator[Any]:
        """`TrainPoint`s of both models until the request's seconds (or `max_steps`) run out."""
        from models.text.live_train import live_training

        return live_training(
            training_text(request),
            request.seed,
            request.seconds,
            self.live_config(),
            max_steps=self.max_steps,
            should_stop=should_stop,
        )

    def facts(self) -> str:
        """One line on the two networks: what they share and what differs."""
        c = self.live_config()
        return (
            f"Both: the product's transformer class, {c.depth} layer{'s' if c.depth != 1 else ''}, width {c.width}, "
            f"{c.heads} head{'s' if c.heads != 1 else ''}, no dropout, windows of {c.context} bytes, batches of "
            f"{c.batch} drawn once for both, AdamW at {c.lr:g}. Only the attention mask and the objective differ."
        )
