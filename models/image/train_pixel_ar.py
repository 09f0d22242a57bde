"""Train the image race's autoregressive digit model (a class-conditional Gated PixelCNN, models/image/pixel_ar.py).

    python -m models.image.train_pixel_ar --data MNIST_DIR --out DIR [--split train10k]

The same training digits as the DDPM, minus `--valid` of them drawn at random (seeded: `selection_split`), held
out to choose the best weights (never trained on); the model card reports bits per pixel on the t10k test digits,
which no choice saw. The split is drawn, not cut from the end: train10k is sorted by class, so its last digits
are all 9s.
Resumable (re-run the same command), seeded, `--max-minutes` for a shared machine; the log goes to
DIR/training.csv, the best weights to DIR/model.safetensors with DIR/config.json.
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.checkpoints import save_weights, sha256_of, write_json
from models.image.data import find_split, load_split
from models.image.pixel_ar import PixelARConfig, PixelCNN, nll_bits_per_pixel, quantise
from models.schedules import warmup_cosine
from models.train_state import has_state, load_state, save_state


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder with MNIST IDX files")
    p.add_argument("--split", default="train10k", help="training split name (never t10k)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--valid", type=int, default=500, help="digits held out (drawn at random, seeded) to choose weights")
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--kernel", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--min-lr-ratio", type=float, default=0.05, help="final learning rate as a share of --lr")
    p.add_argument("--steps", type=int, default=3000, help="length of the learning-rate schedule")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--max-minutes", type=float, default=float("inf"))
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def selection_split(count: int, valid: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, selection) of a split of `count` digits: `valid` of them drawn at random with `seed`, so the
    selection digits hold every class whatever order the file has (train10k is sorted by class). Its own generator:
    the training batches draw the same stream whatever the split."""
    if not 0 < valid < count:
        raise ValueError(f"the selection split must hold between 1 and {count - 1} digits, got {valid}")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[valid:], order[:valid]


def learning_rate(step: float, args: argparse.Namespace) -> float:
    return warmup_cosine(step, args.lr, args.warmup, args.steps, args.lr * args.min_lr_ratio)


@torch.inference_mode()
def heldout_bits(network: PixelCNN, pixels: torch.Tensor, labels: torch.Tensor) -> float:
    network.eval()
    total = sum(nll_bits_per_pixel(network, p, y) * len(p) for p, y in zip(pixels.split(250), labels.split(250)))
    network.train()
    return total / len(pixels)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.split == "t10k":
        raise SystemExit("t10k is the held-out test set: never train on it")
    if args.threads:
        torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    images, labels = load_split(args.data, args.split)
    pixels, targets = quantise(torch.from_numpy(images.copy()), args.levels), torch.from_numpy(labels)
    try:
        train_index, valid_index = selection_split(len(pixels), args.valid, args.seed)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    train_pixels, train_labels = pixels[train_index], targets[train_index]
    valid_pixels, valid_labels = pixels[valid_index], targets[valid_index]
    config = PixelARConfig(levels=args.levels, channels=args.channels, layers=args.layers, kernel=args.kernel)
    write_json(out / "config.json", config.to_dict())
    torch.manual_seed(args.seed)
    network = PixelCNN(config)
    optimizer = torch.optim.Adam(network.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    counters = {"step": 0, "best": float("inf"), "wall_seconds": 0.0}
    if has_state(out / "resume"):
        counters = load_state(out / "resume", network, optimizer, generator)
        print(f"resumed at step {counters['step']}")
    log_path = out / "training.csv"
    if not log_path.exists():
        log_path.write_text("step,epochs,train_bits,heldout_bits,lr,wall_seconds\n")
    started, session_start = time.time() - counters["wall_seconds"], time.time()
    running = None
    network.train()
    bar = tqdm(total=args.steps, initial=counters["step"], unit="step", mininterval=20, dynamic_ncols=True)
    while counters["step"] < args.steps:
        step = counters["step"]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args)
        index = torch.randint(0, len(train_pixels), (args.batch,), generator=generator)
        batch = train_pixels[index]
        loss = F.cross_entropy(network(batch, train_labels[index]), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        bits = loss.item() / math.log(2)
        running = bits if running is None else 0.98 * running + 0.02 * bits
        counters["step"] = step + 1
        bar.update(1)
        bar.set_postfix(bits=f"{running:.4f}")
        now = counters["step"]
        if now % args.eval_every == 0 or now == args.steps:
            held = heldout_bits(network, valid_pixels, valid_labels)
            counters["wall_seconds"] = time.time() - started
            with log_path.open("a", newline="") as f:
                csv.writer(f).writerow(
                    [now, round(now * args.batch / len(train_pixels), 3), round(running, 4), round(held, 4),
                     f"{learning_rate(step, args):.2e}", round(counters["wall_seconds"], 1)]
                )  # fmt: skip
            tqdm.write(f"step {now} train {running:.4f} heldout {held:.4f} bits/pixel")
            if held < counters["best"]:
                counters["best"] = held
                save_weights(network, out / "model.safetensors")
                write_json(
                    out / "training_summary.json",
                    {
                        "best_heldout_bits": round(held, 4),
                        "best_step": now,
                        "epochs": round(now * args.batch / len(train_pixels), 3),
                        "train_digits": len(train_pixels),
                        "selection_digits": args.valid,
                        "selection_split": f"drawn at random, seed {args.seed}",
                        "selection_digits_per_class": torch.bincount(valid_labels, minlength=10).tolist(),
                        "data_sha256": sha256_of(find_split(args.data, args.split)[0]),
                        "wall_seconds": round(counters["wall_seconds"], 1),
                        "hardware": f"{platform.machine()} {torch.get_num_threads()} threads",
                        "parameters": network.parameter_count(),
                        "args": {k: str(v) for k, v in vars(args).items() if k != "data"},
                    },
                )
            save_state(out / "resume", network, optimizer, generator, counters)
            if (time.time() - session_start) / 60 > args.max_minutes:
                tqdm.write("time budget reached; re-run to resume")
                break
    bar.close()


if __name__ == "__main__":
    main()
