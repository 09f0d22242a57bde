"""Train the class-conditional digit DDPM.

    python -m models.image.train --data MNIST_DIR --out DIR [--split train10k]

Epsilon prediction, cosine schedule, 1000 steps, 10% label dropout for classifier-free guidance, EMA
weights for sampling. Resumable (re-run the same command), seeded; writes a sample grid every
--sample-every steps and a `save_pretrained`-style folder (unet/ and scheduler/) from the EMA weights.
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from PIL import Image
from tqdm import tqdm

from models.checkpoints import save_weights, sha256_of, write_json
from models.image.data import load_split, to_model_range
from models.image.network import NO_CLASS, build_scheduler, build_unet
from models.schedules import warmup_cosine
from models.train_state import has_state, load_state, save_state


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder with MNIST IDX files")
    p.add_argument("--split", default="train10k", help="training split name (never t10k)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--min-lr-ratio", type=float, default=0.05, help="final learning rate as a share of --lr")
    p.add_argument("--steps", type=int, default=4000, help="length of the learning-rate schedule")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--label-dropout", type=float, default=0.1)
    p.add_argument("--max-minutes", type=float, default=float("inf"))
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--sample-every", type=int, default=1000)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def learning_rate(step: float, args: argparse.Namespace) -> float:
    """Linear warmup, then cosine decay to `min_lr_ratio` of the peak at `--steps`."""
    return warmup_cosine(step, args.lr, args.warmup, args.steps, args.lr * args.min_lr_ratio)


def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, m in zip(ema.parameters(), model.parameters()):
            e.lerp_(m, 1 - decay)


def sample_grid(unet: torch.nn.Module, scheduler_config: dict, path: Path, seed: int) -> None:
    """One row per digit, 10 DDIM-50 samples each at guidance 2: a quick look, not a metric."""
    from models.image.model import ImageModel
    from models.image.sample import ImageRequest, sample_image

    model = ImageModel(unet=unet, scheduler_config=scheduler_config, classifier=None, name="training", trained=True)
    rows = []
    for digit in range(10):
        *_, last = sample_image(model, ImageRequest(digit=digit, guidance=2.0, steps=50, seed=seed, batch=10))
        rows.append(np.concatenate(list(last.x0), axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.split == "t10k":
        raise SystemExit("t10k is the held-out test set: never train on it")
    if args.threads:
        torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    images, labels = load_split(args.data, args.split)
    data = torch.from_numpy(to_model_range(images))
    targets = torch.from_numpy(labels)

    torch.manual_seed(args.seed)
    unet, ema = build_unet(args.width), build_unet(args.width)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    scheduler = build_scheduler()
    alphas_cumprod = scheduler.alphas_cumprod
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(args.seed)
    counters = {"step": 0, "wall_seconds": 0.0}
    if has_state(out / "resume"):
        counters = load_state(out / "resume", unet, optimizer, generator, extra_modules={"ema": ema})
        print(f"resumed at step {counters['step']}")
    log_path = out / "training.csv"
    if not log_path.exists():
        log_path.write_text("step,epochs,loss,lr,wall_seconds\n")

    started = time.time() - counters["wall_seconds"]
    session_start = time.time()
    running = None
    unet.train()
    bar = tqdm(total=args.steps, initial=counters["step"], unit="step", mininterval=20, dynamic_ncols=True)
    while counters["step"] < args.steps:
        step = counters["step"]
        lr = learning_rate(step, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(0, len(data), (args.batch,), generator=generator)
        x0 = data[index]
        # Random shifts of up to 1 pixel: cheap augmentation for a 10k-digit set.
        shift = torch.randint(-1, 2, (2,), generator=generator).tolist()
        x0 = torch.roll(x0, shifts=shift, dims=(2, 3))
        y = targets[index].clone()
        y[torch.rand(args.batch, generator=generator) < args.label_dropout] = NO_CLASS
        t = torch.randint(0, 1000, (args.batch,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        ab = alphas_cumprod[t].view(-1, 1, 1, 1)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        loss = F.mse_loss(unet(xt, t, class_labels=y).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        update_ema(ema, unet, min(args.ema, (1 + step) / (10 + step)))
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        counters["step"] = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        now = counters["step"]
        if now % args.log_every == 0:
            with log_path.open("a", newline="") as f:
                csv.writer(f).writerow(
                    [now, round(now * args.batch / len(data), 2), round(running, 5), lr, round(time.time() - started, 1)]
                )
        finished = now >= args.steps
        out_of_time = (time.time() - session_start) / 60 > args.max_minutes
        if now % args.save_every == 0 or finished or out_of_time:
            counters["wall_seconds"] = time.time() - started
            save_state(out / "resume", unet, optimizer, generator, counters, extra_modules={"ema": ema})
            export(ema, scheduler, out, args, counters, len(data))
        if now % args.sample_every == 0 or finished:
            sample_grid(ema, dict(scheduler.config), out / f"samples_{now:06d}.png", args.seed)
        if out_of_time:
            tqdm.write("time budget reached; re-run to resume")
            break
    bar.close()


def export(ema: UNet2DModel, scheduler, out: Path, args: argparse.Namespace, counters: dict, train_size: int) -> None:
    """EMA weights and configs in the diffusers folder layout (unet/, scheduler/)."""
    (out / "unet").mkdir(exist_ok=True)
    (out / "scheduler").mkdir(exist_ok=True)
    write_json(out / "unet" / "config.json", {k: v for k, v in dict(ema.config).items() if not k.startswith("_")})
    save_weights(ema, out / "unet" / "model.safetensors")
    write_json(
        out / "scheduler" / "scheduler_config.json", {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    )
    images_path = args.data / f"{args.split}-images-idx3-ubyte.gz"
    write_json(
        out / "training_summary.json",
        {
            "steps": counters["step"],
            "epochs": counters["step"] * args.batch / train_size,
            "wall_seconds": counters["wall_seconds"],
            "train_digits": train_size,
            "data_sha256": sha256_of(images_path) if images_path.exists() else "",
            "hardware": f"{platform.machine()} {torch.get_num_threads()} threads",
            "parameters": sum(p.numel() for p in ema.parameters()),
            "args": {k: str(v) for k, v in vars(args).items()},
        },
    )


if __name__ == "__main__":
    main()
