"""Would batching different requests' forward passes pay on this machine? The networks alone, no server.

    python bench/batching.py [--threads 1] [--repeats 20]

Prints one JSON line: for the text diffusion network (a 68-token canvas: a short prompt and 64 blanks) and
the image UNet (one 28x28 digit, classifier-free guidance doubling the batch), the time of one forward
pass for B requests against B passes for one, as `speedup` (B x one-request time / B-request time; > 1
means batching that many requests would finish them sooner). Same process, same thread count, medians.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from common import emit, median

BATCHES = (1, 2, 4, 8, 16)


def timed(call: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    import torch

    from models.checkpoints import CHECKPOINT_ROOT
    from models.image.model import load_image_model
    from models.text.model import load_text_model

    torch.set_num_threads(args.threads)
    text = load_text_model(CHECKPOINT_ROOT / "text-diffusion")
    image = load_image_model(CHECKPOINT_ROOT / "image-ddpm")
    canvas = torch.full((1, 68), text.mask_id)
    timestep = torch.tensor(500)

    def text_forward(batch: int) -> Callable[[], object]:
        ids = canvas.expand(batch, -1).contiguous()
        return lambda: text.network(ids)

    def image_forward(batch: int) -> Callable[[], object]:
        x, labels = torch.randn(2 * batch, 1, 28, 28), torch.tensor([3, 10] * batch)  # conditional + null class
        return lambda: image.unet(x, timestep, class_labels=labels).sample

    result: dict[str, object] = {"bench": "batching", "threads": args.threads, "repeats": args.repeats}
    with torch.inference_mode():
        for name, forward in (("text", text_forward), ("image", image_forward)):
            calls = {batch: forward(batch) for batch in BATCHES}
            for call in calls.values():
                call()  # warm-up
            times = {batch: timed(call, args.repeats) for batch, call in calls.items()}
            result[name] = {
                str(batch): {"ms": round(t * 1000, 2), "speedup": round(batch * times[1] / t, 2)} for batch, t in times.items()
            }
    emit(result)


if __name__ == "__main__":
    main()
