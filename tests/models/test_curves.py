"""The data-efficiency plot CLI: continuation runs are shifted, the plot and merged CSV are written."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from models.text.curves import heldout_marker, main, parse_curve, read_curve

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


def test_a_stage_ends_curve_shows_each_point(tmp_path: Path) -> None:
    assert heldout_marker("diffusion, from AR step 1200 (stage ends)") == "o"
    assert heldout_marker("autoregressive") is None  # a logged curve is a line, however few its points
    sparse = write_log(tmp_path / "s.csv", [(100, 2.0, 4.0, 3.9), (200, 5.0, 3.8, 3.7)])
    out = tmp_path / "plot.png"
    main(["--curve", f"a (stage ends)={sparse}", "--out", str(out)])
    assert out.read_bytes().startswith(b"\x89PNG")


def test_merged_keeps_the_earlier_curves_and_a_curve_replaces_its_label(tmp_path: Path) -> None:
    ar = write_log(tmp_path / "ar.csv", [(100, 1.0, 4.0, 4.2), (200, 2.0, 3.0, 3.5)])
    old = write_log(tmp_path / "old.csv", [(100, 1.0, 5.0, 5.0)])
    out = tmp_path / "plot.svg"
    main(["--curve", f"ar={ar}", "--curve", f"d={old}", "--out", str(out)])
    ar.unlink()  # the run's log is gone: its curve lives on in the merged CSV
    new = write_log(tmp_path / "new.csv", [(100, 1.0, 4.5, 4.4), (200, 2.0, 4.4, 4.3)])
    added = write_log(tmp_path / "added.csv", [(50, 0.5, 6.0, 6.0)])
    main(["--merged", str(out.with_suffix(".csv")), "--curve", f"d={new}", "--curve", f"e={added}", "--out", str(out)])
    with out.with_suffix(".csv").open() as f:
        rows = [(r["curve"], float(r["heldout_loss"])) for r in csv.DictReader(f)]
    assert rows == [("ar", 4.2), ("ar", 3.5), ("d", 4.4), ("d", 4.3), ("e", 6.0)]


def test_no_curve_at_all_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "plot.svg")])
