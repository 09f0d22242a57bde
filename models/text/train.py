"""Train the masked-diffusion text model or its autoregressive twin.

    python -m models.text.train --kind diffusion --data train.txt --valid valid.txt --out DIR

Resumable (re-run the same command), seeded, logs held-out loss to DIR/training.csv and keeps the best
held-out weights in DIR/model.safetensors, the latest training state in DIR/resume/.
"""

from __future__ import annotations

import argparse
import csv
import platform
import shutil
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer
from tqdm import tqdm

from models.checkpoints import load_weights, portable_summary, read_json, save_weights, sha256_of, write_json
from models.schedules import warmup_cosine
from models.text.card import card_samples, write_model_card
from models.text.data import encode_stream, fixed_windows, random_windows, read_stories
from models.text.evaluate import heldout_loss
from models.text.model import TextModel
from models.text.network import TextModelConfig, TextTransformer
from models.text.objectives import ar_loss, mdlm_loss, sdtt_loss, stratified_mask_rates
from models.text.tokenizer import load_tokenizer, special_ids, train_tokenizer
from models.train_state import has_state, load_state, save_state

CSV_FIELDS = ["step", "tokens_seen", "epochs", "train_loss", "heldout_loss", "lr", "wall_seconds"]


def learning_rate(step: float, args: argparse.Namespace) -> float:
    return warmup_cosine(step, args.lr, args.warmup, args.steps, args.min_lr)


def selection_windows(valid_stream: torch.Tensor, context: int, count: int) -> torch.Tensor:
    """The windows that choose the best checkpoint: the held-out text's last ones. `evaluate` reports on
    the head of the same text, so the published numbers come from text the choice never saw."""
    return fixed_windows(valid_stream, context)[-count:]


def heldout_distillation(
    student: TextTransformer, teacher: TextTransformer, windows: torch.Tensor, dt: float, draws: int, seed: int = 0
) -> float:
    """A distillation run's held-out figure: the SDTT loss on the selection windows, the same draws every time (a
    student's NELBO can rise while its few-step samples improve, so it does not choose the checkpoint)."""
    generator = torch.Generator().manual_seed(seed)
    was_training = student.training
    student.eval()
    try:
        with torch.no_grad():
            losses = [
                sdtt_loss(student, teacher, windows[i : i + 16], dt, generator).item()
                for _ in range(draws)
                for i in range(0, len(windows), 16)
            ]
    finally:
        student.train(was_training)
    return sum(losses) / len(losses)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["diffusion", "ar"], required=True)
    p.add_argument("--data", type=Path, required=True, help="training text, stories separated by <|endoftext|>")
    p.add_argument("--valid", type=Path, required=True, help="held-out text (never trained on)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tokenizer", type=Path, help="existing tokenizer.json (default: train one on --data)")
    p.add_argument("--init-from", type=Path, help="checkpoint folder whose weights initialise this model")
    p.add_argument(
        "--shift",
        action="store_true",
        help="diffusion: position j read from the state at j - 1, as the AR twin (Dream / DiffuLLaMA initialisation)",
    )
    p.add_argument(
        "--teacher",
        type=Path,
        help="diffusion: distil this checkpoint folder for fewer steps (SDTT): the model learns to do in one step of "
        "1/--student-steps what the teacher does in two half steps; the log's held-out column is then that loss",
    )
    p.add_argument("--student-steps", type=int, default=32, help="with --teacher: the steps the student is made for")
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=20000, help="length of the learning-rate schedule")
    p.add_argument("--max-minutes", type=float, default=float("inf"), help="stop (resumably) after this long")
    p.add_argument("--patience", type=int, default=8, help="stop after this many evaluations without improvement")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-windows", type=int, default=96)
    p.add_argument("--eval-draws", type=int, default=4)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.teacher and args.kind != "diffusion":
        p.error("--teacher is for --kind diffusion")
    if args.student_steps < 1:
        p.error("--student-steps must be at least 1")
    if args.shift and args.kind != "diffusion":
        p.error("--shift is for --kind diffusion")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.eval_windows < 1:
        raise SystemExit("--eval-windows must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_path = out / "tokenizer.json"
    if not tokenizer_path.exists():
        tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else train_tokenizer([args.data], args.vocab)
        tokenizer.save(str(tokenizer_path))
    tokenizer = load_tokenizer(tokenizer_path)
    eos_id, mask_id = special_ids(tokenizer)

    train_stream = encode_stream(tokenizer, read_stories(args.data))
    valid_windows = selection_windows(encode_stream(tokenizer, read_stories(args.valid)), args.context, args.eval_windows)

    config = TextModelConfig(
        vocab_size=tokenizer.get_vocab_size(),
        context=args.context,
        width=args.width,
        depth=args.depth,
        heads=args.heads,
        dropout=args.dropout,
        causal=args.kind == "ar",
        mask_id=mask_id,
        eos_id=eos_id,
        shift=args.shift,
    )
    if (out / "config.json").exists() and TextModelConfig(**read_json(out / "config.json")) != config:
        raise SystemExit(f"{out}/config.json differs from these arguments; use a new --out")
    write_json(out / "config.json", config.to_dict())
    torch.manual_seed(args.seed)  # weight init only; batches use their own generator
    model = TextTransformer(config)
    if args.init_from and not has_state(out / "resume"):
        load_weights(model, args.init_from / "model.safetensors")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    teacher = None
    if args.teacher:
        teacher = TextTransformer(TextModelConfig(**read_json(args.teacher / "config.json")))
        load_weights(teacher, args.teacher / "model.safetensors")
        teacher.eval()
        if teacher.config.vocab_size != config.vocab_size or teacher.config.mask_id != config.mask_id:
            raise SystemExit(f"{args.teacher} has another tokenizer than this run")
    generator = torch.Generator().manual_seed(args.seed)
    counters = {"step": 0, "best": float("inf"), "wall_seconds": 0.0, "since_best": 0}
    if has_state(out / "resume"):
        counters = load_state(out / "resume", model, optimizer, generator)
        print(f"resumed at step {counters['step']}")
    log_path = out / "training.csv"
    if not log_path.exists():
        with log_path.open("w", newline="") as f:
            csv.writer(f).writerow(CSV_FIELDS)

    tokens_per_step = args.batch * args.context
    started = time.time() - counters["wall_seconds"]
    session_start = time.time()
    model.train()
    running = None
    bar = tqdm(total=args.steps, initial=counters["step"], unit="step", mininterval=20, dynamic_ncols=True)
    while counters["step"] < args.steps:
        step = counters["step"]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args)
        batch = random_windows(train_stream, args.batch, args.context, generator)
        if config.causal:
            loss = ar_loss(model, batch)
        elif teacher is not None:
            loss = sdtt_loss(model, teacher, batch, 1.0 / args.student_steps, generator)
        else:
            loss = mdlm_loss(model, batch, stratified_mask_rates(args.batch, generator), generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        counters["step"] = step + 1
        bar.update(1)
        elapsed = time.time() - session_start
        bar.set_postfix(loss=f"{running:.3f}", tok_s=f"{(step + 1 - bar.initial) * tokens_per_step / max(elapsed, 1e-9):.0f}")

        if counters["step"] % args.eval_every == 0 or counters["step"] == args.steps:
            held = (
                heldout_distillation(model, teacher, valid_windows, 1.0 / args.student_steps, args.eval_draws)
                if teacher is not None
                else heldout_loss(model, valid_windows, args.eval_draws)
            )
            counters["wall_seconds"] = time.time() - started
            tokens_seen = counters["step"] * tokens_per_step
            row = [
                counters["step"],
                tokens_seen,
                round(tokens_seen / len(train_stream), 3),
                round(running, 4),
                round(held, 4),
                f"{learning_rate(step, args):.2e}",
                round(counters["wall_seconds"], 1),
            ]
            with log_path.open("a", newline="") as f:
                csv.writer(f).writerow(row)
            tqdm.write(f"step {row[0]} epochs {row[2]} train {row[3]} heldout {row[4]}")
            if held < counters["best"]:
                counters["best"], counters["since_best"] = held, 0
                save_weights(model, out / "model.safetensors")
                write_json(
                    out / "training_summary.json",
                    {
                        "kind": args.kind,
                        "best_heldout_loss": held,
                        "best_step": counters["step"],
                        "tokens_seen": tokens_seen,
                        "epochs": tokens_seen / len(train_stream),
                        "train_tokens": len(train_stream),
                        "data_sha256": sha256_of(args.data),
                        "valid_sha256": sha256_of(args.valid),
                        "wall_seconds": counters["wall_seconds"],
                        "hardware": f"{platform.machine()} {torch.get_num_threads()} threads",
                        "parameters": model.parameter_count(),
                        "init_from": str(args.init_from or ""),
                        "args": {k: str(v) for k, v in vars(args).items()},
                    },
                )
            else:
                counters["since_best"] += 1
            save_state(out / "resume", model, optimizer, generator, counters)
            if counters["since_best"] >= args.patience:
                tqdm.write("held-out loss stopped improving; stopping")
                break
            if (time.time() - session_start) / 60 > args.max_minutes:
                tqdm.write("time budget reached; re-run to resume")
                break
    bar.close()
    if counters["step"] >= args.steps or counters["since_best"] >= args.patience:
        shutil.rmtree(out / "resume", ignore_errors=True)
        write_run_card(out, config, tokenizer)
        (out / "FINISHED").write_text("training finished\n")


def write_run_card(out: Path, config: TextModelConfig, tokenizer: Tokenizer) -> None:
    """The finished run's MODEL_CARD.md, from its best held-out weights (publish rewrites it with the fp16 check)."""
    network = TextTransformer(config)
    load_weights(network, out / "model.safetensors")
    network.eval()
    model = TextModel(network, tokenizer, out.name, trained=True)
    write_model_card(out, out.name, config, portable_summary(read_json(out / "training_summary.json")), [], card_samples(model))


if __name__ == "__main__":
    main()
