"""The data-efficiency plot CLI: continuation runs are shifted, the plot and merged CSV are written."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from models.text.curves import main, parse_curve, read_curve

HEADER = "step,tokens_seen,epochs,train_loss,heldout_loss,lr,wall_seconds\n"


def write_log(path: Path, rows: list[tuple[int, float, float, float]]) -> Path:
    path.write_text(HEADER + "".join(f"{s},{s * 10},{e},{t},{h},1e-3,{s}\n" for s, e, t, h in rows))
    return path


def test_a_continued_run_follows_the_one_it_continued(tmp_path: Path) -> None:
    first = write_log(tmp_path / "a.csv", [(100, 0.5, 5.0, 4.9), (200, 1.0, 4.0, 4.1)])
    second = write_log(tmp_path / "b.csv", [(100, 0.5, 3.9, 4.0)])
    points = read_curve([first, second])
    assert [p.step for p in points] == [100, 200, 300]
    assert [p.epochs for p in points] == [0.5, 1.0, 1.5]
    assert points[-1].heldout_loss == 4.0


def test_the_cli_writes_the_plot_and_its_data(tmp_path: Path) -> None:
    ar = write_log(tmp_path / "ar.csv", [(100, 1.0, 4.0, 4.2), (200, 2.0, 3.0, 3.5), (300, 3.0, 2.0, 3.6)])
    diffusion = write_log(tmp_path / "d.csv", [(100, 1.0, 5.0, 5.0), (200, 2.0, 4.5, 4.4)])
    out = tmp_path / "plot.svg"
    main(["--curve", f"ar={ar}", "--curve", f"diffusion={diffusion}", "--out", str(out)])
    assert out.read_text().lstrip().startswith("<?xml") and "<svg" in out.read_text()
    with out.with_suffix(".csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["curve"] for r in rows] == ["ar"] * 3 + ["diffusion"] * 2
    assert float(rows[2]["heldout_loss"]) == 3.6


@pytest.mark.parametrize("spec", ["no-equals.csv", "=a.csv", "label="])
def test_a_malformed_curve_spec_is_refused(spec: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_curve(spec)
