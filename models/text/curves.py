"""The data-efficiency plot: held-out loss against epochs of the same repeated data, for both text models.

    python -m models.text.curves --curve "autoregressive=runs/ar/training.csv" \
        --curve "diffusion, from scratch=runs/diffusion/training.csv" \
        --curve "diffusion, from AR=runs/stage1/training.csv,runs/stage2/training.csv" \
        --curve "diffusion, from AR step 1200 (stage ends)=lineage_head.csv" --out curves.svg
    python -m models.text.curves --merged curves.csv --curve "new=runs/new/training.csv" --out curves.svg

Each `--curve` is `label=csv[,csv...]`: the CSVs of one model's training, in order. A run that continued
another (`--init-from`) starts its own counters at zero, so later CSVs are shifted to follow the earlier
ones in epochs and steps. Solid lines are held-out loss, dashed lines training loss: where a model
overfits, the two part (held-out flat or rising while training keeps falling). A lineage whose stages
logged other held-out windows enters through `compare_runs --head-log`: a point per stage, on the same
windows as the rest. Writes the plot (SVG or PNG by the suffix of --out) and, beside it, one merged CSV with
a `curve` column, the plot's data.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Point:
    step: int
    epochs: float
    train_loss: float
    heldout_loss: float


# A curve of one point per training stage, measured afterwards (`compare_runs --head-log`); /why reads the
# same suffix, and both draw such a curve's points.
STAGE_ENDS_SUFFIX = " (stage ends)"
CUMULATIVE = ("step", "tokens_seen", "epochs", "wall_seconds")  # counters a continuation restarts at zero


def join_logs(logs: list[list[dict[str, str]]]) -> list[dict[str, str]]:
    """Concatenate training logs (rows of training CSVs), shifting each continuation's counters to start
    where the previous one ended."""
    rows: list[dict[str, str]] = []
    for own in logs:
        offsets = {k: float(rows[-1][k]) for k in CUMULATIVE if k in rows[-1]} if rows else {}
        for row in own:
            shifted = dict(row)
            for key, offset in offsets.items():
                value = float(row[key]) + offset
                shifted[key] = str(int(value)) if key in ("step", "tokens_seen") else f"{value:.6g}"
            rows.append(shifted)
    return rows


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no rows")
    return rows


def read_curve(paths: list[Path]) -> list[Point]:
    return [
        Point(
            step=int(r["step"]),
            epochs=float(r["epochs"]),
            train_loss=float(r["train_loss"]),
            heldout_loss=float(r["heldout_loss"]),
        )
        for r in join_logs([read_csv_rows(p) for p in paths])
    ]


def read_merged(path: Path) -> dict[str, list[Point]]:
    """The curves of a merged CSV this command wrote (the plot's data), in file order."""
    curves: dict[str, list[Point]] = {}
    for r in read_csv_rows(path):
        point = Point(int(r["step"]), float(r["epochs"]), float(r["train_loss"]), float(r["heldout_loss"]))
        curves.setdefault(r["curve"], []).append(point)
    return curves


def parse_curve(spec: str) -> tuple[str, list[Path]]:
    label, sep, paths = spec.partition("=")
    if not sep or not label.strip() or not paths.strip():
        raise argparse.ArgumentTypeError(f"expected label=path.csv[,path.csv...], got {spec!r}")
    return label.strip(), [Path(p.strip()) for p in paths.split(",")]


def heldout_marker(label: str) -> str | None:
    """A stage-ends curve shows where its few points are (a logged curve is a line)."""
    return "o" if label.endswith(STAGE_ENDS_SUFFIX) else None


def plot(curves: dict[str, list[Point]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    for index, (label, points) in enumerate(curves.items()):
        colour = f"C{index}"
        epochs = [p.epochs for p in points]
        axes.plot(
            epochs,
            [p.heldout_loss for p in points],
            color=colour,
            lw=2,
            marker=heldout_marker(label),
            ms=4,
            label=f"{label}: held-out",
        )
        axes.plot(epochs, [p.train_loss for p in points], color=colour, lw=1, ls="--", label=f"{label}: training")
        best = min(points, key=lambda p: p.heldout_loss)
        axes.annotate(
            f"{best.heldout_loss:.2f}",
            (best.epochs, best.heldout_loss),
            textcoords="offset points",
            xytext=(0, -12),
            ha="center",
            fontsize=8,
            color=colour,
        )
    axes.set_xlabel("epochs over the same training stories")
    axes.set_ylabel("loss, nats/token (AR: NLL; diffusion: NELBO)")
    axes.set_title(title, fontsize=11)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, metadata={"Date": None} if out.suffix == ".svg" else None)  # reproducible SVG bytes
    plt.close(figure)


def write_merged(curves: dict[str, list[Point]], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["curve", "step", "epochs", "train_loss", "heldout_loss"])
        for label, points in curves.items():
            writer.writerows([label, p.step, round(p.epochs, 4), p.train_loss, p.heldout_loss] for p in points)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--curve", type=parse_curve, action="append", default=[], help="label=csv[,csv...]")
    p.add_argument(
        "--merged",
        type=Path,
        help="start from the curves of a merged CSV this command wrote (runs whose logs are gone keep their data); "
        "a --curve of the same label replaces one",
    )
    p.add_argument("--out", type=Path, required=True, help="plot file, .svg or .png")
    p.add_argument("--title", default="Held-out loss under repeated data")
    args = p.parse_args(argv)
    curves = read_merged(args.merged) if args.merged else {}
    curves.update({label: read_curve(paths) for label, paths in args.curve})
    if not curves:
        p.error("give at least one --curve, or --merged")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(curves, args.out, args.title)
    write_merged(curves, args.out.with_suffix(".csv"))
    for label, points in curves.items():
        best = min(points, key=lambda p: p.heldout_loss)
        print(
            f"{label}: {points[-1].epochs:.1f} epochs, best held-out {best.heldout_loss:.4f} "
            f"at {best.epochs:.1f} epochs, last {points[-1].heldout_loss:.4f}"
        )
    print(f"wrote {args.out} and {args.out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
