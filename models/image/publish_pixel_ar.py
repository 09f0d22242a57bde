"""Turn a PixelCNN training run into the committed `image-pixel-ar` checkpoint with its evaluation and card.

    python -m models.image.publish_pixel_ar --run runs/image_pixel_ar [--seeds 3]

Measures, on data no training or choice saw: bits per pixel on the t10k test digits (quantised to the model's
levels); the class match of its samples, scored by the held-out digit classifier; and the image race's forced
mistake: how often each model still ends as the requested digit with the same wrong stroke forced early
(the PixelCNN paints it as given when its raster gets there; the DDPM gets it in x_t at `MISTAKE_SHARE` of its
DDIM steps), against the same seeds without it. Weights are stored in fp16 when that moves the held-out bits
by less than 0.001.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from models.checkpoints import CHECKPOINT_ROOT, portable_summary, read_json, save_weights, write_json, write_manifest
from models.image.data import EVALUATION_MNIST, load_split, to_model_range
from models.image.model import load_image_model
from models.image.pixel_ar import PixelARConfig, PixelCNN, levels_to_model_range, load_pixel_ar, quantise, sample_batch
from models.image.race import MISTAKE_PIXELS, MISTAKE_SHARE, mistake_hook
from models.image.request import ImageRequest
from models.image.sample import Meter, sample_image
from models.image.train_pixel_ar import heldout_bits


def test_bits(network: PixelCNN, data: Path, limit: int | None = None) -> float:
    """Bits per pixel on the t10k digits (the first `limit` of them, or all)."""
    images, labels = load_split(data, "t10k")
    images, labels = images[:limit], labels[:limit]
    return heldout_bits(network, quantise(torch.from_numpy(images.copy()), network.config.levels), torch.from_numpy(labels))


def classify(meter: Meter, images: torch.Tensor) -> np.ndarray:
    """images (N, 1, 28, 28) in [-1, 1] -> the classifier's digit per image."""
    return np.array([int(np.argmax(row)) for row in meter(images)])


def race_outcomes(network: PixelCNN, ddpm_folder: Path, classifier: Path, seeds: int, steps: int) -> dict:
    """Share of samples classified as the requested digit, per model, without and with the forced stroke."""
    image_model = load_image_model(ddpm_folder, classifier)
    meter = Meter(image_model.classifier)
    digits = torch.arange(10).repeat(seeds)
    out: dict[str, dict[str, float]] = {}
    top = network.config.levels - 1
    for mistake in (False, True):
        forced = {p: top for p in MISTAKE_PIXELS} if mistake else None
        ar = sample_batch(network, digits, torch.Generator().manual_seed(0), forced=forced)
        ar_hits = classify(meter, levels_to_model_range(ar, network.config.levels)[:, None]) == digits.numpy()
        ddpm_hits: list[bool] = []
        hook = mistake_hook(image_model, steps) if mistake else None
        for digit in range(10):  # a batch shares one label: per digit, `seeds` samples in one batch
            request = ImageRequest(steps=steps, seed=digit, digit=digit, batch=seeds)
            *_, last = sample_image(image_model, request, intervene=hook)
            x0 = torch.from_numpy(to_model_range(last.x0))
            ddpm_hits.extend(bool(hit) for hit in classify(meter, x0) == digit)
        key = "with_mistake" if mistake else "without"
        out[key] = {"pixel_ar": round(float(ar_hits.mean()), 3), "ddpm": round(float(np.mean(ddpm_hits)), 3)}
    out["samples_per_model"] = {"count": float(10 * seeds)}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--name", default="image-pixel-ar")
    p.add_argument("--data", type=Path, default=EVALUATION_MNIST, help="folder with the t10k test digits")
    p.add_argument("--ddpm", type=Path, default=CHECKPOINT_ROOT / "image-ddpm")
    p.add_argument("--classifier", type=Path, default=CHECKPOINT_ROOT / "digit-classifier")
    p.add_argument("--seeds", type=int, default=3, help="samples per digit for class match and the forced mistake")
    p.add_argument("--ddim-steps", type=int, default=50)
    p.add_argument("--out-root", type=Path, default=CHECKPOINT_ROOT)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = p.parse_args(argv)
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
    use_half = abs(test_bits(half, args.data, 1000) - test_bits(network, args.data, 1000)) < 1e-3

    out = args.out_root / args.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_json(out / "config.json", config.to_dict())
    save_weights(network, out / "model.safetensors", half=use_half)
    shutil.copy(args.run / "training.csv", out / "training.csv")
    write_manifest(out)
    published = load_pixel_ar(out).network
    bits = test_bits(published, args.data)

    started = time.perf_counter()
    outcomes = race_outcomes(published, args.ddpm, args.classifier, args.seeds, args.ddim_steps)
    evaluation_seconds = time.perf_counter() - started
    summary = portable_summary(read_json(args.run / "training_summary.json"))
    summary.update(
        weights_dtype="float16" if use_half else "float32",
        test_bits_per_pixel=round(bits, 4),
        class_match=outcomes["without"]["pixel_ar"],
        ddpm_class_match_same_seeds=outcomes["without"]["ddpm"],
        forced_mistake=outcomes,
        mistake_share_of_ddim_steps=MISTAKE_SHARE,
        evaluation_seconds=round(evaluation_seconds, 1),
    )
    write_json(out / "training_summary.json", summary)
    card = [
        f"# {args.name}",
        "",
        f"A class-conditional Gated PixelCNN ({summary['parameters']:,} parameters, {config.layers} gated layers of",
        f"{config.channels} channels, kernel {config.kernel}) that paints 28x28 digits pixel by pixel in raster order over",
        f"{config.levels} intensity levels: the autoregressive side of the image race (`/race/image`).",
        "",
        f"- trained on: MNIST train10k minus its last {summary.get('selection_digits', '?')} digits (held out to choose",
        "  the weights),"
        f" sha256 `{summary.get('data_sha256', '?')}`; {summary.get('epochs')} epochs, best at step {summary.get('best_step')}",
        f"- wall time: {summary.get('wall_seconds')} s on {summary.get('hardware')}",
        f"- weights: {summary['weights_dtype']}",
        f"- **held-out negative log-likelihood on the 10,000 MNIST t10k test digits: {summary['test_bits_per_pixel']} bits",
        f"  per pixel** (over {config.levels} levels; a uniform guess is {np.log2(config.levels):.0f})",
        f"- **class match** (the held-out digit classifier on {10 * args.seeds} samples, {args.seeds} per digit):"
        f" {outcomes['without']['pixel_ar']:.3f}; the DDPM (DDIM {args.ddim_steps}, same seeds):"
        f" {outcomes['without']['ddpm']:.3f}",
        f"- **after a forced early mistake** (the same wrong stroke, {len(MISTAKE_PIXELS)} pixels, in both):"
        f" PixelCNN {outcomes['with_mistake']['pixel_ar']:.3f}, DDPM {outcomes['with_mistake']['ddpm']:.3f} still end as the"
        " requested digit",
        "",
        "Retrain and publish (see the README's Retrain section):",
        "",
        "```",
        "python -m models.image.train_pixel_ar --data MNIST/ --out runs/image_pixel_ar --steps 2400",
        "python -m models.image.publish_pixel_ar --run runs/image_pixel_ar",
        "```",
    ]
    (out / "MODEL_CARD.md").write_text("\n".join(card) + "\n")
    write_manifest(out)
    print(summary)


if __name__ == "__main__":
    main()
