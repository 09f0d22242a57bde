"""Two tiny twins trained side by side on one small text, live: the data-efficiency claim as an experiment.

The autoregressive twin and the masked-diffusion model are the same network class (`models.text.network`, the
product's, `causal` the only difference), the same size, the same byte tokens and the same batches: each step draws
one batch of windows and both models take one optimiser step on it, each with its own objective
(`models.text.objectives`: next-token cross-entropy; the MDLM NELBO). The held-out text is split off the end of the
chosen text first and never trained on (`split_text`; `Batches` draws only from the training part).

Tokens are the text's UTF-8 bytes (256 ids, plus the blank the diffusion model reads as [MASK]): any text works,
nothing is fitted to it, and both models see exactly the same sequence. Losses are nats per byte; the diffusion
model's is an upper bound (NELBO), measured on fixed masks at fixed rates so its points do not jitter with the draw.

`live_training` yields one `TrainPoint` per evaluation (both models' training and held-out loss, epochs so far) and
every few evaluations a short sample from each model's current weights, until the step or time budget runs out.
With the same seed the same points come out (one thread; the time budget only decides how many).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from models.text.live_request import CONTEXT, split_text, summary
from models.text.network import TextModelConfig, TextTransformer
from models.text.objectives import ar_loss, mdlm_loss, stratified_mask_rates

BYTES = 256
MASK_ID = BYTES  # the diffusion model's blank: one id past the bytes
EVAL_RATES = (0.1, 0.3, 0.5, 0.7, 0.9)  # fixed mask rates for the diffusion model's held-out NELBO


@dataclass(frozen=True)
class LiveConfig:
    """The experiment's knobs: small enough to train in minutes on one CPU core."""

    context: int = CONTEXT
    width: int = 64
    depth: int = 2
    heads: int = 2
    batch: int = 16
    lr: float = 3e-3
    eval_every: int = 25  # steps between points
    eval_windows: int = 32  # windows of each split per point (the same windows every time)
    sample_every: int = 8  # points between samples
    sample_bytes: int = 32  # at most what a window holds after its opening

    def network(self, causal: bool) -> TextModelConfig:
        # no dropout: the experiment is what each objective does with data seen again and again
        return TextModelConfig(
            vocab_size=BYTES + 1,
            context=self.context + 1,  # a window: the AR twin reads `context` bytes and predicts the next
            width=self.width,
            depth=self.depth,
            heads=self.heads,
            dropout=0.0,
            causal=causal,
            mask_id=MASK_ID,
            eos_id=0,
        )


@dataclass(frozen=True)
class TrainPoint:
    step: int
    epochs: float  # training bytes seen / training bytes
    seconds: float  # wall-clock time since the run started (both models, evaluations included)
    ar_train: float
    ar_held_out: float
    diffusion_train: float
    diffusion_held_out: float  # NELBO: an upper bound
    # every `sample_every` points: the held-out opening ("prompt") and each model's continuation ("ar", "diffusion")
    samples: dict[str, str] = field(default_factory=dict)


def _windows(data: bytes, starts: torch.Tensor, context: int) -> torch.Tensor:
    tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    return torch.stack([tensor[s : s + context + 1] for s in starts.tolist()])  # (B, context + 1)


class Batches:
    """Seeded random windows of the training bytes only (the held-out bytes are not in reach)."""

    def __init__(self, train: bytes, config: LiveConfig, generator: torch.Generator) -> None:
        self.train, self.config, self.generator = train, config, generator

    def next(self) -> torch.Tensor:
        high = len(self.train) - self.config.context - 1
        starts = torch.randint(0, high + 1, (self.config.batch,), generator=self.generator)
        return _windows(self.train, starts, self.config.context)


def _fixed_windows(data: bytes, count: int, context: int) -> torch.Tensor:
    """`count` windows spread evenly over `data`: the same ones at every point."""
    high = len(data) - context - 1
    starts = torch.linspace(0, high, steps=count).round().long()
    return _windows(data, starts, context)


@torch.no_grad()
def _ar_nll(model: TextTransformer, windows: torch.Tensor) -> float:
    return float(ar_loss(model, windows))


@torch.no_grad()
def _nelbo(model: TextTransformer, windows: torch.Tensor, seed: int) -> float:
    """The NELBO at fixed rates and fixed masks (seeded): a low-variance, repeatable estimate."""
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for rate in EVAL_RATES:
        t = torch.full((windows.shape[0],), rate)
        total += float(mdlm_loss(model, windows, t, generator))
    return total / len(EVAL_RATES)


@torch.no_grad()
def sample_ar(model: TextTransformer, prompt: bytes, count: int, generator: torch.Generator) -> bytes:
    ids = list(prompt)
    for _ in range(count):
        window = torch.tensor([ids[-model.config.context :]])
        probs = F.softmax(model(window)[0, -1, :BYTES], dim=-1)
        ids.append(int(torch.multinomial(probs, 1, generator=generator)))
    return bytes(ids[len(prompt) :])


@torch.no_grad()
def sample_diffusion(model: TextTransformer, prompt: bytes, count: int, generator: torch.Generator) -> bytes:
    """Blanks after the prompt, filled a few at a time in random order (MDLM ancestral sampling, count/4 passes)."""
    keep = list(prompt[-(model.config.context - count) :])
    ids = torch.tensor([keep + [MASK_ID] * count])
    blanks = list(range(len(keep), len(keep) + count))
    order = torch.randperm(count, generator=generator).tolist()
    per_pass = 4
    for start in range(0, count, per_pass):
        probs = F.softmax(model(ids)[0, :, :BYTES], dim=-1)
        for index in order[start : start + per_pass]:
            position = blanks[index]
            ids[0, position] = int(torch.multinomial(probs[position], 1, generator=generator))
    return bytes(ids[0, len(keep) :].tolist())


def _readable(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def live_training(
    text: str,
    seed: int,
    max_seconds: float,
    config: LiveConfig | None = None,
    max_steps: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[TrainPoint]:
    """Train both twins on `text` until `max_seconds` of wall-clock time have passed, evaluations included (or
    `max_steps`), yielding a point every `eval_every` steps (the first at step 0, before any training) and one at the
    last step.

    Whatever grad mode the caller is in (the web engine samples under inference mode), training needs autograd: the
    generator switches it on for its own frames."""
    with torch.inference_mode(False), torch.enable_grad():
        yield from _train(text, seed, max_seconds, config or LiveConfig(), max_steps, should_stop)


def _train(
    text: str,
    seed: int,
    max_seconds: float,
    config: LiveConfig,
    max_steps: int | None,
    should_stop: Callable[[], bool] | None,
) -> Iterator[TrainPoint]:
    train, held_out = split_text(text, config.context)
    torch.manual_seed(seed)  # the networks' initial weights
    models = {"ar": TextTransformer(config.network(causal=True)), "diffusion": TextTransformer(config.network(causal=False))}
    optimisers = {name: torch.optim.AdamW(m.parameters(), lr=config.lr, weight_decay=0.0) for name, m in models.items()}
    batches = Batches(train, config, torch.Generator().manual_seed(seed))
    masks = torch.Generator().manual_seed(seed + 1)
    sampler = torch.Generator().manual_seed(seed + 2)
    train_windows = _fixed_windows(train, config.eval_windows, config.context)
    held_windows = _fixed_windows(held_out, config.eval_windows, config.context)
    prompt = held_out[: config.context // 4]  # a held-out opening; the sample fills the rest of a window
    sample_bytes = min(config.sample_bytes, config.context - len(prompt))
    started = time.perf_counter()
    step, points = 0, 0

    def point() -> TrainPoint:
        for model in models.values():
            model.eval()
        samples: dict[str, str] = {}
        if points % config.sample_every == 0:
            samples = {
                "prompt": _readable(prompt),
                "ar": _readable(sample_ar(models["ar"], prompt, sample_bytes, sampler)),
                "diffusion": _readable(sample_diffusion(models["diffusion"], prompt, sample_bytes, sampler)),
            }
        result = TrainPoint(
            step=step,
            epochs=step * config.batch * (config.context + 1) / len(train),
            seconds=round(time.perf_counter() - started, 3),
            ar_train=round(_ar_nll(models["ar"], train_windows), 4),
            ar_held_out=round(_ar_nll(models["ar"], held_windows), 4),
            diffusion_train=round(_nelbo(models["diffusion"], train_windows, seed), 4),
            diffusion_held_out=round(_nelbo(models["diffusion"], held_windows, seed), 4),
            samples=samples,
        )
        for model in models.values():
            model.train()
        return result

    yield point()
    points += 1
    while time.perf_counter() - started < max_seconds and (max_steps is None or step < max_steps):
        if should_stop is not None and should_stop():
            return
        ids = batches.next()
        losses = {
            "ar": ar_loss(models["ar"], ids),
            "diffusion": mdlm_loss(models["diffusion"], ids, stratified_mask_rates(config.batch, masks), masks),
        }
        for name, loss in losses.items():
            optimisers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimisers[name].step()
        step += 1
        if step % config.eval_every == 0:
            yield point()
            points += 1
    if step % config.eval_every:  # the budget ran out between points: the last steps get theirs
        yield point()


def steps_per_second(config: LiveConfig | None = None, steps: int = 20) -> float:
    """Both models' training steps per second on this machine (the budget -> epochs estimate)."""
    text = "Once upon a time there was a little girl. " * 200
    started = time.perf_counter()
    for _ in live_training(text, 0, math.inf, config, max_steps=steps):
        pass
    return steps / (time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------------------
# The presets and the measurement behind the page's claims


def story_slice(data: str, size: int) -> str:
    """The first whole stories of a TinyStories file that fit in `size` bytes, one blank line between stories (the
    `<|endoftext|>` separators dropped: the byte models should learn stories, not the marker)."""
    stories = [s.strip() for s in data.split("<|endoftext|>") if s.strip()]
    out: list[str] = []
    used = 0
    for story in stories:
        cost = len(story.encode("utf-8")) + 2
        if used + cost > size:
            break
        out.append(story)
        used += cost
    return "\n\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description="The live twins on a slice of the training stories, several seeds.")
    parser.add_argument("--data", type=Path, required=True, help="TinyStories train.txt")
    parser.add_argument("--bytes", type=int, default=10_000, help="the slice (whole stories that fit)")
    parser.add_argument("--seconds", type=float, default=90.0, help="wall-clock budget per seed, evaluations included")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True, help="JSON: every point and each seed's summary")
    parser.add_argument("--preset-out", type=Path, help="also write the slice itself (a committed preset)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    text = story_slice(args.data.read_text(encoding="utf-8"), args.bytes)
    if args.preset_out:
        args.preset_out.write_text(text, encoding="utf-8")
    runs = []
    for seed in args.seeds:
        started = time.perf_counter()
        points = list(live_training(text, seed, args.seconds))
        row = {"seed": seed, "wall_s": round(time.perf_counter() - started, 1), **summary(points)}
        print(json.dumps(row))
        runs.append({**row, "points": [p.__dict__ for p in points]})
    config = LiveConfig()
    args.out.write_text(
        json.dumps({"bytes": len(text.encode()), "seconds": args.seconds, "config": config.__dict__, "runs": runs}, indent=1)
    )


if __name__ == "__main__":
    main()
