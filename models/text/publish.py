"""Turn a training run into a committed checkpoint folder with a model card.

    python -m models.text.publish --run runs/text-diffusion --name text-diffusion

Copies the best held-out weights (fp16 when that costs under 0.2% of held-out loss), config, tokenizer
and training log into models/checkpoints/<name>/, writes MODEL_CARD.md with held-out metrics and ten
samples, and the sha256 manifest the app checks before loading.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

from models.checkpoints import (
    CHECKPOINT_ROOT,
    load_weights,
    portable_summary,
    read_json,
    save_weights,
    write_json,
    write_manifest,
)
from models.text.card import card_samples, write_model_card
from models.text.curves import join_logs, read_csv_rows
from models.text.data import encode_stream, fixed_windows, read_stories
from models.text.evaluate import HELDOUT_TEXT, heldout_loss
from models.text.model import TextModel
from models.text.network import TextModelConfig, TextTransformer
from models.text.tokenizer import load_tokenizer


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--valid", type=Path, default=HELDOUT_TEXT)
    p.add_argument("--out-root", type=Path, default=CHECKPOINT_ROOT)
    p.add_argument(
        "--history",
        type=Path,
        action="append",
        default=[],
        help="training.csv of a run this one continued (--init-from), oldest first; repeatable",
    )
    args = p.parse_args(argv)

    config = TextModelConfig.from_json(read_json(args.run / "config.json"))
    tokenizer = load_tokenizer(args.run / "tokenizer.json")
    network = TextTransformer(config)
    load_weights(network, args.run / "model.safetensors")
    model = TextModel(network, tokenizer, args.name, trained=True)
    windows = fixed_windows(encode_stream(tokenizer, read_stories(args.valid)), config.context)[:64]
    full = heldout_loss(network, windows)
    half_state = {k: v.half().float() if v.is_floating_point() else v for k, v in network.state_dict().items()}
    half_network = TextTransformer(config)
    half_network.load_state_dict(half_state)
    half = heldout_loss(half_network, windows)
    use_half = abs(half - full) / full < 0.002

    out = args.out_root / args.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    save_weights(network, out / "model.safetensors", half=use_half)
    write_json(out / "config.json", config.to_dict())
    shutil.copy(args.run / "tokenizer.json", out / "tokenizer.json")
    summary = portable_summary(read_json(args.run / "training_summary.json"))
    earlier = [read_csv_rows(path) for path in args.history]
    log = join_logs([*earlier, read_csv_rows(args.run / "training.csv")])  # the whole lineage, counters continued
    with (out / "training.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(log[0]))
        writer.writeheader()
        writer.writerows(log)
    if args.history:
        summary["best_step"] += int(log[sum(map(len, earlier)) - 1]["step"])  # where this run's steps start
        summary.update(
            {k: float(log[-1][k]) for k in ("epochs", "wall_seconds")},
            tokens_seen=int(log[-1]["tokens_seen"]),
            stages=len(args.history) + 1,
        )
    if summary.get("init_from"):  # a local folder name means nothing to a reader: say what it was
        summary["init_from"] = (
            "the autoregressive twin's weights, each position predicted from the state before it as the twin "
            "predicts (Dream / DiffuLLaMA's shift initialisation)"
            if config.shift
            else "the autoregressive twin's weights (Dream / DiffuLLaMA-style initialisation)"
        )
    summary.update(
        heldout_loss_fp32=round(full, 4),
        heldout_loss_published=round(half if use_half else full, 4),
        weights_dtype="float16" if use_half else "float32",
    )
    write_json(out / "training_summary.json", summary)

    fp16_line = (
        f"- {full:.4f} on 64 windows of the shipped validation excerpt (fp32), {half:.4f} in fp16 "
        f"-> weights stored as {summary['weights_dtype']}"
    )
    write_model_card(out, args.name, config, summary, [fp16_line], card_samples(model))
    write_manifest(out)
    print(f"published {out} ({summary['weights_dtype']}), held-out {full:.4f}")


if __name__ == "__main__":
    main()
