"""Train the digit classifier that scores the DDPM and drives the "when is it decided" meter.

    python -m models.image.train_classifier --data MNIST_DIR --out DIR [--split train10k]

Trained on the training split only (random shifts, rotations and noise as augmentation, so it also
reads the half-formed predicted x0 of early denoising steps); accuracy reported on t10k.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.checkpoints import save_weights, sha256_of, write_json, write_manifest
from models.image.classifier import ClassifierConfig, DigitClassifier
from models.image.data import load_split, to_model_range


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small random affine warps (+-10 degrees, +-10% scale, +-2 px shift)."""
    n = len(x)
    angle = (torch.rand(n, generator=generator) - 0.5) * 2 * 0.175
    scale = 1 + (torch.rand(n, generator=generator) - 0.5) * 0.2
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 2 * (2 / 14)
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1  # pad with background


@torch.inference_mode()
def accuracy(model: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = sum((model(chunk).argmax(-1) == y).sum().item() for chunk, y in zip(images.split(1000), labels.split(1000)))
    return correct / len(labels)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="train10k")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=ClassifierConfig.width, help="channels of the first convolutions")
    p.add_argument("--features", type=int, default=ClassifierConfig.features, help="size of the feature layer")
    p.add_argument(
        "--full-size-convs",
        type=int,
        default=ClassifierConfig.full_size_convs,
        help="convolutions at 28x28 before the first pooling",
    )
    args = p.parse_args(argv)
    if args.split == "t10k":
        raise SystemExit("t10k is the held-out test set: never train on it")
    if args.threads:
        torch.set_num_threads(args.threads)
    images, labels = load_split(args.data, args.split)
    test_images, test_labels = load_split(args.data, "t10k")
    x, y = torch.from_numpy(to_model_range(images)), torch.from_numpy(labels)
    tx, ty = torch.from_numpy(to_model_range(test_images)), torch.from_numpy(test_labels)

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    config = ClassifierConfig(width=args.width, features=args.features, full_size_convs=args.full_size_convs)
    model = DigitClassifier(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * (len(x) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)
    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        bar = tqdm(order.split(args.batch)[: len(x) // args.batch], desc=f"epoch {epoch + 1}", mininterval=10)
        for index in bar:
            batch = augment(x[index], generator)
            # Some light Gaussian noise so partly denoised digits are in distribution too.
            batch = batch + 0.2 * torch.rand(len(batch), 1, 1, 1, generator=generator) * torch.randn(
                batch.shape, generator=generator
            )
            loss = F.cross_entropy(model(batch), y[index], label_smoothing=0.05)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    test_accuracy = accuracy(model, tx, ty)
    print(f"t10k accuracy {test_accuracy:.4f}")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config.to_dict())
    save_weights(model, out / "model.safetensors")
    summary = {
        "t10k_accuracy": test_accuracy,
        "epochs": args.epochs,
        "train_digits": len(x),
        "wall_seconds": round(time.time() - started, 1),
        "data_sha256": sha256_of(args.data / f"{args.split}-images-idx3-ubyte.gz"),
        "hardware": f"{platform.machine()} {torch.get_num_threads()} threads",
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    write_json(out / "training_summary.json", summary)
    (out / "MODEL_CARD.md").write_text(
        f"# {out.name}\n\nA small CNN ({config.full_size_convs + 2} conv layers of {config.width}-{4 * config.width} "
        f"channels, a {config.features}-d "
        "feature layer) that reads digits: the scoring classifier (class match, Frechet distance in its feature space) "
        "or the 'when is it decided' meter's, which runs at every step of a run.\n\n"
        f"- trained on: MNIST {args.split} ({len(x)} digits), sha256 `{summary['data_sha256']}`\n"
        f"- epochs: {args.epochs}, augmentation: affine warps and light Gaussian noise\n"
        f"- parameters: {summary['parameters']}\n- wall time: {summary['wall_seconds']} s on {summary['hardware']}\n"
        f"- **accuracy on the held-out MNIST t10k test set: {test_accuracy:.4f}**\n"
    )
    write_manifest(out)


if __name__ == "__main__":
    main()
