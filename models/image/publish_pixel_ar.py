"""Turn a PixelCNN training run into the committed `image-pixel-ar` checkpoint with its evaluation and card.

    python -m models.image.publish_pixel_ar --run runs/image_pixel_ar [--seeds 3]

Measures, on data no training or choice saw: bits per pixel on the t10k test digits (quantised to the model's
levels) and the class match of its samples beside the DDPM's on the same seeds, scored by the held-out digit
classifier, with 95% Wilson intervals (the samples `models.image.evaluate_race` draws without the stroke).
Weights are stored in fp16 when that moves the held-out bits by less than 0.001. `--changes` says on the card
what changed from the checkpoint before. The image race's forced mistake is measured apart, per timing, by
`python -m models.image.evaluate_race` (docs/image-race-recovery.json): re-run it after publishing.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from models.checkpoints import CHECKPOINT_ROOT, portable_summary, read_json, save_weights, write_json, write_manifest
from models.image.data import EVALUATION_MNIST, load_split
from models.image.evaluate_race import ddpm_samples, outcome, pixel_samples
from models.image.model import load_image_model
from models.image.pixel_ar import PixelARConfig, PixelCNN, load_pixel_ar, quantise
from models.image.race_recovery import Outcome
from models.image.train_pixel_ar import heldout_bits


def t10k_bits(network: PixelCNN, data: Path, limit: int | None = None) -> float:
    """Bits per pixel on the t10k digits (the first `limit` of them, or all)."""
    images, labels = load_split(data, "t10k")
    images, labels = images[:limit], labels[:limit]
    return heldout_bits(network, quantise(torch.from_numpy(images.copy()), network.config.levels), torch.from_numpy(labels))


def class_match(network: PixelCNN, ddpm_folder: Path, classifier: Path, per_digit: int, steps: int) -> dict[str, Outcome]:
    """Both models' class match on `per_digit` samples of each digit, without the stroke: the baseline samples of
    the recovery evaluation (same seeds), so the card's figures and docs/image-race-recovery.json's agree."""
    image_model = load_image_model(ddpm_folder, classifier)
    if image_model.classifier is None:
        raise SystemExit(f"no digit classifier in {classifier}")
    return {
        "pixel_ar": outcome(image_model.classifier, *pixel_samples(network, per_digit, 0, stroke=False)),
        "ddpm": outcome(image_model.classifier, *ddpm_samples(image_model, per_digit, steps, 1.0, 0, None)),
    }


def _match_line(outcome: Outcome) -> str:
    return f"{outcome.matches}/{outcome.samples} = {outcome.rate:.3f} (95% interval {outcome.low:.3f}-{outcome.high:.3f})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--name", default="image-pixel-ar")
    p.add_argument("--data", type=Path, default=EVALUATION_MNIST, help="folder with the t10k test digits")
    p.add_argument("--ddpm", type=Path, default=CHECKPOINT_ROOT / "image-ddpm")
    p.add_argument("--classifier", type=Path, default=CHECKPOINT_ROOT / "digit-classifier")
    p.add_argument("--per-digit", type=int, default=10, help="samples of each digit for the class match (1-1000)")
    p.add_argument("--changes", default="", help="what changed from the checkpoint before (a sentence for the card)")
    p.add_argument("--ddim-steps", type=int, default=50)
    p.add_argument("--out-root", type=Path, default=CHECKPOINT_ROOT)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = p.parse_args(argv)
    if not 1 <= args.per_digit <= 1000:
        p.error(f"--per-digit must be between 1 and 1000, got {args.per_digit}")
    if args.threads:
        torch.set_num_threads(args.threads)

    config = PixelARConfig(**read_json(args.run / "config.json"))
    network = PixelCNN(config)
    from models.checkpoints import load_weights

    load_weights(network, args.run / "model.safetensors")
    network.eval()
    half = PixelCNN(config)
    half.load_state_dict({k: v.half().float() for k, v in network.state_dict().items()})
    half.eval()
    # fp16 is free when it moves the bits of the first 1,000 test digits by less than 0.001
    use_half = abs(t10k_bits(half, args.data, 1000) - t10k_bits(network, args.data, 1000)) < 1e-3

    out = args.out_root / args.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_json(out / "config.json", config.to_dict())
    save_weights(network, out / "model.safetensors", half=use_half)
    shutil.copy(args.run / "training.csv", out / "training.csv")
    write_manifest(out)
    published = load_pixel_ar(out).network
    bits = t10k_bits(published, args.data)

    started = time.perf_counter()
    matches = class_match(published, args.ddpm, args.classifier, args.per_digit, args.ddim_steps)
    evaluation_seconds = time.perf_counter() - started
    summary = portable_summary(read_json(args.run / "training_summary.json"))
    summary.update(
        weights_dtype="float16" if use_half else "float32",
        test_bits_per_pixel=round(bits, 4),
        class_match=matches["pixel_ar"].to_dict(),
        ddpm_class_match_same_seeds=matches["ddpm"].to_dict(),
        class_match_ddim_steps=args.ddim_steps,
        evaluation_seconds=round(evaluation_seconds, 1),
    )
    if args.changes:
        summary["changes"] = args.changes
    per_class = summary.get("selection_digits_per_class")
    selection = (
        f"{summary.get('selection_digits', '?')} digits drawn at random (seed {summary.get('args', {}).get('seed', '?')};"
        f" {', '.join(str(n) for n in per_class)} of the digits 0-9)"
        if per_class
        else f"its last {summary.get('selection_digits', '?')} digits"
    )
    write_json(out / "training_summary.json", summary)
    card = [
        f"# {args.name}",
        "",
        f"A class-conditional Gated PixelCNN ({summary['parameters']:,} parameters, {config.layers} gated layers of",
        f"{config.channels} channels, kernel {config.kernel}) that paints 28x28 digits pixel by pixel in raster order over",
        f"{config.levels} intensity levels: the autoregressive side of the image race (`/race/image`).",
        "",
        f"- trained on: MNIST train10k minus {selection}, held out to choose the weights; sha256",
        f"  `{summary.get('data_sha256', '?')}`; {summary.get('epochs')} epochs, best at step {summary.get('best_step')}",
        f"- wall time: {summary.get('wall_seconds')} s on {summary.get('hardware')}",
        f"- weights: {summary['weights_dtype']}",
        f"- **held-out negative log-likelihood on the 10,000 MNIST t10k test digits: {summary['test_bits_per_pixel']} bits",
        f"  per pixel** (over {config.levels} levels; a uniform guess is {np.log2(config.levels):.0f})",
        f"- **class match** (the held-out digit classifier on {10 * args.per_digit} samples, {args.per_digit} per digit):"
        f" {_match_line(matches['pixel_ar'])}; the DDPM (DDIM {args.ddim_steps}, guidance 1, same seeds):"
        f" {_match_line(matches['ddpm'])}",
        "- the image race's forced stroke, per timing of the stroke in the DDPM: `docs/image-race-recovery.json`",
        "  (`python -m models.image.evaluate_race`, re-run after publishing)",
        "",
        *([f"What changed from the checkpoint before: {args.changes}", ""] if args.changes else []),
        "Retrain and publish (see the README's Retrain section):",
        "",
        "```",
        "python -m models.image.train_pixel_ar --data MNIST/ --out runs/image_pixel_ar --steps 2400",
        "python -m models.image.publish_pixel_ar --run runs/image_pixel_ar",
        "python -m models.image.evaluate_race",
        "```",
    ]
    (out / "MODEL_CARD.md").write_text("\n".join(card) + "\n")
    write_manifest(out)
    print(summary)


if __name__ == "__main__":
    main()
