"""Held-out loss of training runs on the head and on the tail of a validation file, one JSON line per run.

    python -m models.text.compare_runs --valid TinyStories/valid.txt RUN [RUN ...] [--windows 96] [--draws 4]
        [--head-log lineage_head.csv]

Training chooses (and logs) its best checkpoint on the tail windows of `--valid`; the twin and the earlier
diffusion lineage were trained before that and logged the head. The two sets differ by a lot (the earlier
lineage's final weights: 3.063 on the head, 3.408 on the tail), so a new run's log is compared with theirs only
through this: the same windows, the same mask draws (seeded), the run's best weights.

`--head-log` writes the runs, taken as the stages of one lineage in the order given, as one training log on
the head windows: a row per stage at its best step (the weights the next stage started from), with that row's
training loss from the stage's own log and the counters running on from the stage before. The data-efficiency
plot draws it beside the curves logged on the head.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from models.checkpoints import read_json
from models.text.curves import CUMULATIVE
from models.text.data import encode_stream, fixed_windows, read_stories
from models.text.evaluate import heldout_loss
from models.text.model import load_text_network
from models.text.tokenizer import load_tokenizer
from models.text.train import CSV_FIELDS, selection_windows


def head_and_tail(stream: torch.Tensor, context: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` windows (what the published lineage logged) and the ones training chooses on now."""
    windows = fixed_windows(stream, context)
    if len(windows) < count:
        raise SystemExit(f"the validation text has {len(windows)} windows of {context} tokens, fewer than {count}")
    return windows[:count], selection_windows(stream, context, count)


def best_row(folder: Path) -> dict[str, str]:
    """The run's training-log row at its best step (the step its saved weights are from)."""
    if not (folder / "training_summary.json").exists() or not (folder / "training.csv").exists():
        raise SystemExit(f"{folder} needs training_summary.json and training.csv (a training run's folder)")
    summary = read_json(folder / "training_summary.json")
    with (folder / "training.csv").open(newline="") as f:
        row = next((r for r in csv.DictReader(f) if int(r["step"]) == summary["best_step"]), None)
    if row is None:
        raise SystemExit(f"{folder}/training.csv has no row for its best step {summary['best_step']}")
    return row


def lineage_rows(rows: list[dict[str, str]], head_losses: list[float]) -> list[list[object]]:
    """Stage rows as one log: each stage's counters run on from the previous stage's best row."""
    out: list[list[object]] = []
    offsets = dict.fromkeys(CUMULATIVE, 0.0)  # the counters a later stage continues
    for row, head in zip(rows, head_losses, strict=True):
        at = {k: float(row[k]) + offsets[k] for k in CUMULATIVE}
        out.append(
            [
                int(at["step"]),
                int(at["tokens_seen"]),
                round(at["epochs"], 3),
                row["train_loss"],
                round(head, 4),
                row["lr"],
                round(at["wall_seconds"], 1),
            ]
        )
        offsets = at
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="run or checkpoint folders (config.json, model.safetensors)")
    p.add_argument("--valid", type=Path, required=True, help="held-out text (never trained on)")
    p.add_argument("--windows", type=int, default=96, help="windows at each end (training's --eval-windows)")
    p.add_argument("--draws", type=int, default=4, help="mask draws per window (training's --eval-draws)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--head-log", type=Path, help="write the runs, as stages of one lineage, as a training log on the head")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    stage_rows = [best_row(folder) for folder in args.runs] if args.head_log else []  # refuse before measuring
    head_losses: list[float] = []
    streams: dict[Path, torch.Tensor] = {}
    for folder in args.runs:
        tokenizer_path = folder / "tokenizer.json"
        if tokenizer_path not in streams:
            streams[tokenizer_path] = encode_stream(load_tokenizer(tokenizer_path), read_stories(args.valid))
        network = load_text_network(folder)
        head, tail = head_and_tail(streams[tokenizer_path], network.config.context, args.windows)
        summary = read_json(folder / "training_summary.json") if (folder / "training_summary.json").exists() else {}
        head_loss = heldout_loss(network, head, args.draws)
        head_losses.append(head_loss)
        print(
            json.dumps(
                {
                    "run": str(folder),
                    "best_step": summary.get("best_step"),
                    "epochs": round(summary["epochs"], 2) if "epochs" in summary else None,
                    "head": round(head_loss, 4),
                    "tail": round(heldout_loss(network, tail, args.draws), 4),
                    "windows": args.windows,
                    "draws": args.draws,
                }
            ),
            flush=True,
        )
    if args.head_log:
        args.head_log.parent.mkdir(parents=True, exist_ok=True)
        with args.head_log.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_FIELDS)
            writer.writerows(lineage_rows(stage_rows, head_losses))
        print(f"wrote {args.head_log}")


if __name__ == "__main__":
    main()
