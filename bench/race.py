"""The default race on this machine: forward passes and wall time per lane, the twin with and without its
KV cache, and 16- against 64-step diffusion. The samplers alone, no server.

    python bench/race.py [--threads 1] [--repeats 5] [--length 64]

Prints one JSON line. Per configuration, the median over `--repeats` seeded races (seeds 0..repeats-1) of
each lane's own compute time (`models.text.race` times every step of each lane) and its passes, and the
ratios measured in this run: the AR twin's cached speed-up, and how the diffusion lane's wall time compares
with the cached AR lane's at 16 and at 64 steps (< 1: diffusion finished first in wall time).
"""

from __future__ import annotations

import argparse

from common import emit, median

PROMPT = "Once upon a time"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the server gives each job cores // jobs)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--length", type=int, default=64)
    args = parser.parse_args()

    import torch

    from models.checkpoints import CHECKPOINT_ROOT
    from models.text.decoding import TextRequest
    from models.text.model import load_text_model
    from models.text.race import sample_race

    torch.set_num_threads(args.threads)
    diffusion = load_text_model(CHECKPOINT_ROOT / "text-diffusion")
    autoregressive = load_text_model(CHECKPOINT_ROOT / "text-ar")

    def race(steps: int, use_cache: bool, seed: int) -> dict[str, tuple[int, float]]:
        request = TextRequest(prompt=PROMPT, length=args.length, steps=steps, seed=seed)
        *_, last = sample_race(diffusion, autoregressive, request, use_cache=use_cache)
        return {lane.name: (lane.frame.forward_passes, lane.wall_ms) for lane in last.lanes}

    race(16, True, 0)  # warm-up: first calls allocate and pick kernels
    result: dict[str, object] = {
        "bench": "race",
        "threads": args.threads,
        "repeats": args.repeats,
        "length": args.length,
        "prompt": PROMPT,
    }
    with torch.inference_mode():
        for steps, use_cache in ((16, True), (16, False), (64, True)):
            runs = [race(steps, use_cache, seed) for seed in range(args.repeats)]
            key = f"diffusion_{steps}_steps__ar_{'cached' if use_cache else 'uncached'}"
            result[key] = {
                lane: {"passes": runs[0][lane][0], "wall_ms": round(median([r[lane][1] for r in runs]), 1)}
                for lane in ("diffusion", "ar")
            }
    cached = result["diffusion_16_steps__ar_cached"]
    uncached = result["diffusion_16_steps__ar_uncached"]
    long = result["diffusion_64_steps__ar_cached"]
    assert isinstance(cached, dict) and isinstance(uncached, dict) and isinstance(long, dict)
    result["ar_cache_speedup"] = round(uncached["ar"]["wall_ms"] / cached["ar"]["wall_ms"], 2)
    result["diffusion16_over_ar_time"] = round(cached["diffusion"]["wall_ms"] / cached["ar"]["wall_ms"], 2)
    result["diffusion64_over_ar_time"] = round(long["diffusion"]["wall_ms"] / long["ar"]["wall_ms"], 2)
    result["ar_over_diffusion16_passes"] = round(cached["ar"]["passes"] / cached["diffusion"]["passes"], 2)
    emit(result)


if __name__ == "__main__":
    main()
