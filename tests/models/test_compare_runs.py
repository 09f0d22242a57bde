"""compare_runs: a run's best weights on the head and the tail of a validation text, as training measures."""

import csv
import json
from pathlib import Path

import pytest
import torch

from models.checkpoints import save_weights, write_json
from models.text import compare_runs
from models.text.evaluate import heldout_loss
from models.text.model import untrained_text_model


@pytest.fixture
def run(tmp_path: Path) -> Path:
    model = untrained_text_model(causal=False, seed=3)
    folder = tmp_path / "run"
    folder.mkdir()
    write_json(folder / "config.json", model.network.config.to_dict())
    save_weights(model.network, folder / "model.safetensors")
    model.tokenizer.save(str(folder / "tokenizer.json"))
    write_json(folder / "training_summary.json", {"best_step": 40, "epochs": 1.234})
    return folder


def test_it_reports_the_same_loss_as_training_on_the_first_and_last_windows(run: Path, tmp_path: Path, capsys) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("<|endoftext|>".join(f"Story {i}: the cat sat on mat number {i * 7}." for i in range(400)))
    compare_runs.main([str(run), "--valid", str(valid), "--windows", "2", "--draws", "2"])
    line = json.loads(capsys.readouterr().out)
    assert (line["best_step"], line["epochs"], line["windows"], line["draws"]) == (40, 1.23, 2, 2)

    network = compare_runs.load_text_network(run)
    stream = compare_runs.encode_stream(compare_runs.load_tokenizer(run / "tokenizer.json"), compare_runs.read_stories(valid))
    head, tail = compare_runs.head_and_tail(stream, network.config.context, 2)
    windows = compare_runs.fixed_windows(stream, network.config.context)
    assert torch.equal(head, windows[:2]) and torch.equal(tail, windows[-2:])  # the lineage's, then training's
    assert not torch.equal(head, tail)
    assert line["head"] == round(heldout_loss(network, head, 2), 4)
    assert line["tail"] == round(heldout_loss(network, tail, 2), 4)


def test_too_short_a_validation_text_is_refused_with_the_counts() -> None:
    with pytest.raises(SystemExit, match="has 1 windows of 8 tokens, fewer than 2"):
        compare_runs.head_and_tail(torch.arange(12), 8, 2)


def stage(folder: Path, run: Path, best_step: int, rows: list[str]) -> Path:
    """A copy of `run` as a training stage whose log has these rows (after the header)."""
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (folder / name).write_bytes((run / name).read_bytes())
    write_json(folder / "training_summary.json", {"best_step": best_step, "epochs": 1.0})
    header = "step,tokens_seen,epochs,train_loss,heldout_loss,lr,wall_seconds\n"
    (folder / "training.csv").write_text(header + "\n".join(rows) + "\n")
    return folder


def test_head_log_writes_the_stages_as_one_log_at_their_best_steps(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("<|endoftext|>".join(f"Story {i}: the cat sat on mat number {i * 7}." for i in range(400)))
    rows = ["100,1000,1.0,4.5,4.6,1e-3,10", "200,2000,2.0,4.1,4.2,5e-4,20", "300,3000,3.0,4.0,4.3,1e-4,30"]
    first = stage(tmp_path / "s1", run, 200, rows)
    second = stage(tmp_path / "s2", run, 100, ["100,1000,1.0,3.9,4.0,1e-4,15"])
    out = tmp_path / "head.csv"
    compare_runs.main([str(first), str(second), "--valid", str(valid), "--windows", "2", "--draws", "2", "--head-log", str(out)])
    heads = [json.loads(line)["head"] for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    with out.open() as f:
        written = list(csv.DictReader(f))
    # one row per stage, at its best step; the second stage runs on from the first's best row (step 200), not its last
    assert [(r["step"], r["tokens_seen"], r["epochs"], r["train_loss"], r["wall_seconds"]) for r in written] == [
        ("200", "2000", "2.0", "4.1", "20.0"),
        ("300", "3000", "3.0", "3.9", "35.0"),
    ]
    assert [float(r["heldout_loss"]) for r in written] == heads  # measured on the head, not copied from the log
    assert float(written[0]["heldout_loss"]) != 4.2


def test_head_log_refuses_a_folder_without_a_training_log(run: Path, tmp_path: Path) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("<|endoftext|>".join(f"Story {i}." for i in range(400)))
    with pytest.raises(SystemExit, match=r"needs training_summary\.json and training\.csv"):
        compare_runs.main([str(run), "--valid", str(valid), "--windows", "2", "--head-log", str(tmp_path / "h.csv")])


def test_head_log_refuses_a_log_without_the_best_step(run: Path, tmp_path: Path) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("<|endoftext|>".join(f"Story {i}." for i in range(400)))
    only = stage(tmp_path / "s1", run, 500, ["100,1000,1.0,4.5,4.6,1e-3,10"])
    with pytest.raises(SystemExit, match="no row for its best step 500"):
        compare_runs.main([str(only), "--valid", str(valid), "--windows", "2", "--head-log", str(tmp_path / "h.csv")])
