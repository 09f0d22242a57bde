"""Does the grid's batch pay? 16 samples in one batched run against 16 single runs. The sampler alone, no server.

    python bench/grid.py [--threads 1] [--repeats 3] [--steps 50] [--digit 3]

Prints one JSON line, all measured in this run (medians over `--repeats`, the two orders alternating):
- `grid_s`: one run of the image request with `batch` 16 (`models.image.grid.grid_request`, what /image/grid
  streams): one batched forward pass a step, the classifier's meter on all 16 x0s;
- `singles_s`: 16 runs of the same request, one image each, seeds `seed` .. `seed + 15` (what 16 visitors of the
  image page would cost), summed; `ratio` = singles / grid (above 1: the batch is that many times faster);
- `grid_matches` / `singles_matches`: how many of the 16 final images the digit classifier reads as the digit asked.
"""

from __future__ import annotations

import argparse
import time

from common import emit, median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--digit", type=int, default=3)
    args = parser.parse_args()

    import torch

    from models.checkpoints import CHECKPOINT_ROOT
    from models.frames import ImageFrame
    from models.image.grid import TILES, grid_request
    from models.image.model import load_image_model
    from models.image.request import ImageRequest
    from models.image.sample import sample_image

    torch.set_num_threads(args.threads)
    image = load_image_model(CHECKPOINT_ROOT / "image-ddpm", CHECKPOINT_ROOT / "digit-classifier")
    request = ImageRequest(digit=args.digit, sampler="ddim", steps=args.steps)

    def last(request: ImageRequest) -> tuple[float, ImageFrame]:
        started = time.perf_counter()
        frames = list(sample_image(image, request))  # every frame, as the server streams them
        return time.perf_counter() - started, frames[-1]

    def matches(frames: list[ImageFrame]) -> int:
        reads = [max(range(10), key=p.__getitem__) for frame in frames for p in frame.digit_probabilities]
        return sum(read == args.digit for read in reads)

    def grid() -> tuple[float, int]:
        seconds, frame = last(grid_request(request))
        return seconds, matches([frame])

    def singles() -> tuple[float, int]:
        runs = [last(request.model_copy(update={"seed": request.seed + k})) for k in range(TILES)]
        return sum(seconds for seconds, _ in runs), matches([frame for _, frame in runs])

    last(request.model_copy(update={"steps": 2}))  # warm-up: first-call allocations out of the timings
    grid_s: list[float] = []
    singles_s: list[float] = []
    found: dict[str, int] = {}
    for repeat in range(args.repeats):
        order = [("grid", grid), ("singles", singles)]
        for name, run in order if repeat % 2 == 0 else reversed(order):
            seconds, count = run()
            (grid_s if name == "grid" else singles_s).append(seconds)
            found[name] = count
    grid_median, singles_median = median(grid_s), median(singles_s)
    emit(
        {
            "bench": "grid",
            "threads": args.threads,
            "repeats": args.repeats,
            "sampler": request.sampler,
            "steps": request.steps,
            "tiles": TILES,
            "grid_s": round(grid_median, 3),
            "singles_s": round(singles_median, 3),
            "ratio": round(singles_median / grid_median, 3),
            "grid_matches": found["grid"],
            "singles_matches": found["singles"],
        }
    )


if __name__ == "__main__":
    main()
