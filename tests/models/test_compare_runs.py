"""compare_runs: a run's best weights on the head and the tail of a validation text, as training measures."""

import json
from pathlib import Path

import pytest
import torch

from models.checkpoints import save_weights, write_json
from models.text import compare_runs
from models.text.evaluate import heldout_loss
from models.text.model import untrained_text_model


@pytest.fixture()
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
