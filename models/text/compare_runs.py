"""Held-out loss of training runs on the head and on the tail of a validation file, one JSON line per run.

    python -m models.text.compare_runs --valid TinyStories/valid.txt RUN [RUN ...] [--windows 96] [--draws 4]

Training chooses (and logs) its best checkpoint on the tail windows of `--valid`; the published text models were
trained before that and logged the head. The two sets differ by a lot (the published diffusion model: 3.063 on
the head, 3.408 on the tail), so a new run's log is compared with the published lineage's only through this:
the same windows, the same mask draws (seeded), the run's best weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from models.checkpoints import read_json
from models.text.data import encode_stream, fixed_windows, read_stories
from models.text.evaluate import heldout_loss
from models.text.model import load_text_network
from models.text.tokenizer import load_tokenizer
from models.text.train import selection_windows


def head_and_tail(stream: torch.Tensor, context: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` windows (what the published lineage logged) and the ones training chooses on now."""
    windows = fixed_windows(stream, context)
    if len(windows) < count:
        raise SystemExit(f"the validation text has {len(windows)} windows of {context} tokens, fewer than {count}")
    return windows[:count], selection_windows(stream, context, count)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="run or checkpoint folders (config.json, model.safetensors)")
    p.add_argument("--valid", type=Path, required=True, help="held-out text (never trained on)")
    p.add_argument("--windows", type=int, default=96, help="windows at each end (training's --eval-windows)")
    p.add_argument("--draws", type=int, default=4, help="mask draws per window (training's --eval-draws)")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    streams: dict[Path, torch.Tensor] = {}
    for folder in args.runs:
        tokenizer_path = folder / "tokenizer.json"
        if tokenizer_path not in streams:
            streams[tokenizer_path] = encode_stream(load_tokenizer(tokenizer_path), read_stories(args.valid))
        network = load_text_network(folder)
        head, tail = head_and_tail(streams[tokenizer_path], network.config.context, args.windows)
        summary = read_json(folder / "training_summary.json") if (folder / "training_summary.json").exists() else {}
        print(
            json.dumps(
                {
                    "run": str(folder),
                    "best_step": summary.get("best_step"),
                    "epochs": round(summary["epochs"], 2) if "epochs" in summary else None,
                    "head": round(heldout_loss(network, head, args.draws), 4),
                    "tail": round(heldout_loss(network, tail, args.draws), 4),
                    "windows": args.windows,
                    "draws": args.draws,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
