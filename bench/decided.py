"""When is a digit decided? For each sampler at its default step count, the step at which the classifier first
gave the final digit more than 50% (`app.render.decided.decided_at`, what /image and /image/samplers show),
over every digit and a few seeds. The sampler alone, no server.

    python bench/decided.py [--threads 1] [--per-digit 4] [--ddpm-per-digit 1]

Prints one JSON line per sampler, all measured in this run: `samples`, `class_match` (share the classifier reads
as the digit asked for), `decided_median` / `decided_p25` / `decided_p75` (steps; `..._share` as a fraction of the
run), `never` (samples whose final digit never passed 50%), `s_per_run` (one image, `per_digit` images batched).
Then one line for the meter the server runs (`digit-meter`, a narrower classifier) against the scoring one on the
same DDIM runs: its median decided step, how many samples it decides at the very same step, and the largest gap.
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import emit

DEFAULT_STEPS = {"ddpm": 1000, "ddim": 50, "dpm": 20}  # the samplers page's lanes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--per-digit", type=int, default=4, help="images per digit (one batched run)")
    parser.add_argument("--ddpm-per-digit", type=int, default=1, help="DDPM's 1000 steps cost: fewer of them")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from app.render.decided import decided_at, leading
    from models.checkpoints import CHECKPOINT_ROOT
    from models.image.model import ImageModel, load_image_model
    from models.image.request import ImageRequest
    from models.image.sample import sample_image

    torch.set_num_threads(args.threads)
    image = load_image_model(CHECKPOINT_ROOT / "image-ddpm", CHECKPOINT_ROOT / "digit-classifier")
    served = load_image_model(
        CHECKPOINT_ROOT / "image-ddpm", CHECKPOINT_ROOT / "digit-classifier", CHECKPOINT_ROOT / "digit-meter"
    )

    def decided_steps(model: ImageModel, request: ImageRequest) -> list[tuple[int, int | None]]:
        """(final digit, decided step) per image of one batched run."""
        frames = list(sample_image(model, request))
        steps = []
        for k in range(request.batch):
            # as the image page keeps it: one entry a step, () at step 0 (pure noise: no meter yet)
            history = [frame.digit_probabilities[k] if frame.digit_probabilities else () for frame in frames]
            final = leading(history[-1])
            steps.append((final, decided_at(history, final)))
        return steps

    scoring_ddim: list[int | None] = []
    meter_ddim: list[int | None] = []
    for sampler, steps in DEFAULT_STEPS.items():
        per_digit = args.ddpm_per_digit if sampler == "ddpm" else args.per_digit
        decided: list[int] = []
        never = matches = 0
        started = time.perf_counter()
        for digit in range(10):
            request = ImageRequest(digit=digit, sampler=sampler, steps=steps, seed=args.seed + digit, batch=per_digit)
            for final, step in decided_steps(image, request):
                matches += final == digit
                never += step is None
                if step is not None:
                    decided.append(step)
                if sampler == "ddim":
                    scoring_ddim.append(step)
            if sampler == "ddim":
                meter_ddim.extend(step for _, step in decided_steps(served, request))
        seconds = (time.perf_counter() - started) / 10
        quartiles = statistics.quantiles(decided, n=4) if len(decided) > 1 else [float("nan")] * 3
        samples = 10 * per_digit
        emit(
            {
                "bench": "decided",
                "sampler": sampler,
                "steps": steps,
                "samples": samples,
                "class_match": round(matches / samples, 3),
                "decided_median": statistics.median(decided) if decided else None,
                "decided_p25": quartiles[0],
                "decided_p75": quartiles[2],
                "decided_median_share": round(statistics.median(decided) / steps, 3) if decided else None,
                "never": never,
                "s_per_run": round(seconds, 2),
                "per_digit": per_digit,
                "threads": args.threads,
            }
        )

    # the same runs (sampling does not depend on who reads x0), read by the meter the server runs
    gaps = [abs(a - b) for a, b in zip(scoring_ddim, meter_ddim) if a is not None and b is not None]
    read = [step for step in meter_ddim if step is not None]
    emit(
        {
            "bench": "decided",
            "meter": "digit-meter",
            "sampler": "ddim",
            "samples": len(meter_ddim),
            "decided_median": statistics.median(read) if read else None,
            "same_step_as_scoring": sum(a == b for a, b in zip(scoring_ddim, meter_ddim)),
            "largest_gap": max(gaps) if gaps else None,
            "never": meter_ddim.count(None),
        }
    )


if __name__ == "__main__":
    main()
