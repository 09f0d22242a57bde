"""What does a sampler step cost beyond its forward pass? The samplers alone, no server.

    python bench/steps.py [--threads 1] [--repeats 5]

Prints one JSON line, medians over every step of `--repeats` runs, all measured in this run:
- text diffusion (the default request: 64 tokens after "Once upon a time", 64 steps, `DEFAULT_DECODING`):
  a sampler step (from one frame to the next) and, right after each step, one forward pass of the network over
  that step's canvas; `ratio` = step / forward (1.0: the sampler adds nothing to its network).
- text AR (the twin, KV-cached, same prompt and length): a sampler step and, after each, one cached forward pass
  of one token at the same cache length (on a shadow cache that reads the same tokens).
- image (DDIM, 50 steps, the default request): three runs advanced in lockstep, one step each in turn: the
  sampler with the digit classifier's meter, the sampler without it, and diffusers' own loop (the guided UNet
  and `scheduler.step`, no frames); `meter_ratio` = with / without, `loop_ratio` = with / the bare loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Iterator
from functools import partial

from common import emit, median

PROMPT = "Once upon a time"


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def summary(step: list[float], forward: list[float]) -> dict[str, float]:
    step_ms, forward_ms = median(step) * 1000, median(forward) * 1000
    return {"step_ms": round(step_ms, 3), "forward_ms": round(forward_ms, 3), "ratio": round(step_ms / forward_ms, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    from models.checkpoints import CHECKPOINT_ROOT
    from models.frames import ImageFrame, TextFrame
    from models.image.model import load_image_model
    from models.image.request import ImageRequest
    from models.image.sample import GuidedDenoiser, make_scheduler, sample_image
    from models.text.decoding import TextRequest
    from models.text.model import load_text_model
    from models.text.sample import sample_autoregressive, sample_diffusion

    torch.set_num_threads(args.threads)
    diffusion = load_text_model(CHECKPOINT_ROOT / "text-diffusion")
    twin = load_text_model(CHECKPOINT_ROOT / "text-ar")
    # as the server loads it: the meter reads with its own narrow classifier (digit-meter)
    image = load_image_model(
        CHECKPOINT_ROOT / "image-ddpm", CHECKPOINT_ROOT / "digit-classifier", CHECKPOINT_ROOT / "digit-meter"
    )
    no_meter = dataclasses.replace(image, classifier=None, meter=None)
    text_request = TextRequest(prompt=PROMPT)  # the default request
    image_request = ImageRequest(sampler="ddim", steps=50)

    def canvas(frame: TextFrame, mask_id: int) -> torch.Tensor:
        return torch.tensor([[t.token_id if t.token_id is not None else mask_id for t in frame.tokens]])

    def diffusion_run(step: list[float], forward: list[float]) -> None:
        frames = sample_diffusion(diffusion, text_request)
        frame = next(frames)
        while True:
            started = time.perf_counter()
            following = next(frames, None)
            if following is None:
                return
            step.append(time.perf_counter() - started)
            ids = canvas(frame, diffusion.mask_id)  # the canvas that step read

            def forward_pass(ids: torch.Tensor = ids) -> None:
                with torch.inference_mode():
                    diffusion.network(ids)

            forward.append(timed(forward_pass))
            frame = following

    def ar_run(step: list[float], forward: list[float]) -> None:
        frames = sample_autoregressive(twin, text_request)
        first = next(frames)
        prompt = canvas(first, twin.mask_id)[:, : len(first.tokens) - first.total]
        shadow = twin.network.new_cache()
        with torch.inference_mode():
            twin.network(prompt[:, :-1], shadow)  # the sampler's first step reads the whole prompt
        reading = prompt[:, -1:]
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            elapsed = time.perf_counter() - started
            if frame.step > 1:  # the first step reads the prompt: not a one-token step
                step.append(elapsed)

                def forward_pass(ids: torch.Tensor = reading) -> None:
                    with torch.inference_mode():
                        twin.network(ids, shadow)  # one token at the cache length the sampler's step had

                forward.append(timed(forward_pass))
            else:
                with torch.inference_mode():
                    twin.network(reading, shadow)
            reading = torch.tensor([[frame.tokens[frame.committed[0]].token_id]])

    def bare_loop() -> Iterator[None]:
        """diffusers' DDIM loop with the same guided UNet: the floor a sampler step cannot go under."""
        scheduler = make_scheduler(image, "ddim")
        scheduler.set_timesteps(image_request.steps)
        generator = torch.Generator().manual_seed(image_request.seed)
        x = torch.randn((1, 1, 28, 28), generator=generator) * scheduler.init_noise_sigma
        denoise = GuidedDenoiser(image, image_request.digit, image_request.guidance, 1)
        yield
        for t in scheduler.timesteps.tolist():
            eps = denoise(x, t)
            x = scheduler.step(eps, t, x, generator=generator, eta=0.0, use_clipped_model_output=True).prev_sample
            yield

    def image_run(with_meter: list[float], without: list[float], loop: list[float], flip: bool) -> None:
        runs: list[tuple[Iterator[ImageFrame | None], list[float]]] = [
            (sample_image(image, image_request), with_meter),
            (sample_image(no_meter, image_request), without),
            (bare_loop(), loop),
        ]
        if flip:
            runs.reverse()
        for frames, _ in runs:
            next(frames)  # the initial noise
        for _ in range(image_request.steps):
            for frames, samples in runs:
                samples.append(timed(partial(next, frames)))

    text_step: list[float] = []
    text_forward: list[float] = []
    ar_step: list[float] = []
    ar_forward: list[float] = []
    with_meter: list[float] = []
    without: list[float] = []
    loop: list[float] = []
    diffusion_run([], [])  # warm-up
    ar_run([], [])
    image_run([], [], [], False)
    for repeat in range(args.repeats):
        diffusion_run(text_step, text_forward)
        ar_run(ar_step, ar_forward)
        image_run(with_meter, without, loop, flip=bool(repeat % 2))

    meter_ms, without_ms, loop_ms = (median(samples) * 1000 for samples in (with_meter, without, loop))
    emit(
        {
            "bench": "steps",
            "threads": args.threads,
            "repeats": args.repeats,
            "text_diffusion": summary(text_step, text_forward),
            "text_ar": summary(ar_step, ar_forward),
            "image_ddim": {
                "step_ms": round(meter_ms, 3),
                "step_no_meter_ms": round(without_ms, 3),
                "loop_ms": round(loop_ms, 3),
                "meter_ratio": round(meter_ms / without_ms, 3),
                "loop_ratio": round(meter_ms / loop_ms, 3),
            },
        }
    )


if __name__ == "__main__":
    main()
