"""Measure the image race's forced mistake: does each model still end as the digit asked for, per timing of the
stroke in the DDPM, and how much of the stroke's ink is left.

    python -m models.image.evaluate_race [--per-digit 10] [--out docs/image-race-recovery.json]

For every timing (`MISTAKE_TIMINGS`: the stroke enters the DDPM after 20%, 50% or 80% of its DDIM steps) the DDPM
draws `--per-digit` samples of each digit 0-9 with the stroke written in there, from the same noise at every
timing (so the timings differ by the timing alone). The PixelCNN paints the stroke at its rows whatever the
timing: it draws one set of samples with it, reported on every timing's row. Both also draw the same seeds without
the stroke (the baseline). Every final image is read by the held-out digit classifier (`digit-classifier`, trained
apart from both generators); the rates carry 95% Wilson intervals. `region_ink` is the mean share of full ink real
digits (train10k, per class) put in the stroke's pixels. Seeded: the same command writes the same file.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models.checkpoints import CHECKPOINT_ROOT, sha256_of, write_json
from models.image.classifier import DigitClassifier
from models.image.data import EVALUATION_MNIST, load_split, to_model_range
from models.image.model import ImageModel, load_image_model
from models.image.pixel_ar import PixelCNN, load_pixel_ar, sample_batch
from models.image.race import MISTAKE_PIXELS, mistake_hook, mistake_step, signal_at
from models.image.race_recovery import RECOVERY_FILE, Outcome, Recovery, TimingRow, recovery_to_dict
from models.image.request import MISTAKE_TIMINGS, ImageRequest, MistakeTiming
from models.image.sample import Meter, sample_image

DIGITS = 10
MAX_PER_DIGIT = 1000  # a bound on one run's work: 10,000 samples a model and condition


def classify(classifier: DigitClassifier, images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> the classifier's digit for each."""
    found = Meter(classifier)(torch.from_numpy(to_model_range(images)))
    return np.array([int(np.argmax(row)) for row in found])


def stroke_ink(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> each one's mean share of full ink in the stroke's pixels (0..1)."""
    return images.reshape(len(images), -1)[:, list(MISTAKE_PIXELS)].astype(np.float64).mean(axis=1) / 255


def outcome(classifier: DigitClassifier, images: np.ndarray, digits: np.ndarray) -> Outcome:
    matches = int((classify(classifier, images) == digits).sum())
    return Outcome.measured(matches, len(images), float(stroke_ink(images).mean()))


def ddpm_samples(
    model: ImageModel, per_digit: int, steps: int, guidance: float, seed: int, timing: MistakeTiming | None
) -> tuple[np.ndarray, np.ndarray]:
    """The DDPM's final images (N, 28, 28) and their digits: `per_digit` of each digit, one DDIM batch a digit (a
    batch shares its label), seeded per digit so every timing starts from the same noise; `timing` None: without
    the stroke."""
    images, digits = [], []
    for digit in range(DIGITS):
        request = ImageRequest(
            digit=digit, guidance=guidance, sampler="ddim", steps=steps, seed=seed * 1000 + digit, batch=per_digit
        )
        hook = mistake_hook(model, steps, timing) if timing is not None else None
        *_, last = sample_image(model, request, intervene=hook)
        images.append(last.xt)
        digits.extend([digit] * per_digit)
    return np.concatenate(images), np.array(digits)


def pixel_samples(network: PixelCNN, per_digit: int, seed: int, stroke: bool) -> tuple[np.ndarray, np.ndarray]:
    """The PixelCNN's final images (N, 28, 28) as grey levels and their digits, with or without the stroke painted
    at full ink when its raster reaches it (the same seed either way)."""
    levels = network.config.levels
    digits = torch.arange(DIGITS).repeat_interleave(per_digit)
    forced = {p: levels - 1 for p in MISTAKE_PIXELS} if stroke else None
    canvas = sample_batch(network, digits, torch.Generator().manual_seed(seed), forced=forced)
    grey = np.round(np.arange(levels) / (levels - 1) * 255).astype(np.uint8)
    return grey[canvas.numpy()], digits.numpy()


def region_ink(data: Path, split: str) -> tuple[float, ...]:
    """Per class 0-9, the mean share of full ink real digits put in the stroke's pixels; then over all digits."""
    images, labels = load_split(data, split)
    ink = stroke_ink(images)
    return (*(round(float(ink[labels == digit].mean()), 4) for digit in range(DIGITS)), round(float(ink.mean()), 4))


def evaluate(args: argparse.Namespace) -> Recovery:
    classifier_folder = args.classifier
    model = load_image_model(args.ddpm, classifier_folder)
    classifier = model.classifier
    if classifier is None:
        raise SystemExit(f"no digit classifier in {classifier_folder}")
    pixel = load_pixel_ar(args.pixel_ar)
    if not pixel.trained:
        raise SystemExit(f"{args.pixel_ar} is not a trained checkpoint")
    started = time.perf_counter()
    pixel_with = outcome(classifier, *pixel_samples(pixel.network, args.per_digit, args.seed, stroke=True))
    baseline = {
        "pixel_ar": outcome(classifier, *pixel_samples(pixel.network, args.per_digit, args.seed, stroke=False)),
        "ddpm": outcome(classifier, *ddpm_samples(model, args.per_digit, args.ddim_steps, args.guidance, args.seed, None)),
    }
    print(f"PixelCNN with the stroke {pixel_with}; baseline {baseline} ({time.perf_counter() - started:.0f} s)")
    rows = []
    for timing, share in MISTAKE_TIMINGS.items():
        t, signal = signal_at(model, args.ddim_steps, timing)
        ddpm = outcome(classifier, *ddpm_samples(model, args.per_digit, args.ddim_steps, args.guidance, args.seed, timing))
        print(f"{timing}: after step {mistake_step(args.ddim_steps, timing)}, t={t}, signal {signal:.3f}: DDPM {ddpm}")
        rows.append(TimingRow(timing, share, mistake_step(args.ddim_steps, timing), t, round(signal, 4), ddpm, pixel_with))
    *per_class, overall = region_ink(args.data, args.region_split)
    return Recovery(
        steps=args.ddim_steps,
        guidance=args.guidance,
        per_digit=args.per_digit,
        seed=args.seed,
        checkpoints={
            "image-pixel-ar": sha256_of(args.pixel_ar / "model.safetensors"),
            "image-ddpm": sha256_of(args.ddpm / "unet" / "model.safetensors"),
            "digit-classifier": sha256_of(classifier_folder / "model.safetensors"),
        },
        baseline=baseline,
        timings=tuple(rows),
        region_split=args.region_split,
        region_ink=tuple(per_class),
        region_ink_all=overall,
        command=args.command,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pixel-ar", type=Path, default=CHECKPOINT_ROOT / "image-pixel-ar")
    p.add_argument("--ddpm", type=Path, default=CHECKPOINT_ROOT / "image-ddpm")
    p.add_argument("--classifier", type=Path, default=CHECKPOINT_ROOT / "digit-classifier")
    p.add_argument("--data", type=Path, default=EVALUATION_MNIST, help="folder with the real digits for region_ink")
    p.add_argument("--region-split", default="train10k", help="which of them (train10k or t10k)")
    p.add_argument(
        "--per-digit", type=int, default=10, help=f"samples of each digit, per model and condition (1-{MAX_PER_DIGIT})"
    )
    p.add_argument("--ddim-steps", type=int, default=50, help="the DDPM's DDIM steps (the race's default)")
    p.add_argument("--guidance", type=float, default=1.0, help="the DDPM's guidance (the race's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RECOVERY_FILE)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = p.parse_args(argv)
    if not 1 <= args.per_digit <= MAX_PER_DIGIT:
        p.error(f"--per-digit must be between 1 and {MAX_PER_DIGIT}, got {args.per_digit}")
    if args.ddim_steps < 2:
        p.error(f"--ddim-steps must be at least 2 (a step must follow the stroke), got {args.ddim_steps}")
    if not 0 <= args.seed <= 2**32 - 1:
        p.error(f"--seed must be between 0 and {2**32 - 1}, got {args.seed}")
    # the command as a reader re-runs it: the module and its arguments, absolute paths reduced to file names
    args.command = shlex.join(["python", "-m", "models.image.evaluate_race", *_portable(sys.argv[1:] if argv is None else argv)])
    return args


def _portable(argv: list[str]) -> list[str]:
    return [Path(arg).name if Path(arg).is_absolute() else arg for arg in argv]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    recovery = evaluate(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, recovery_to_dict(recovery))
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
