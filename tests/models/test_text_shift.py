"""Dream / DiffuLLaMA's shift for the diffusion model (`TextModelConfig.shift`): position j read from the hidden state
at j - 1, so a model initialised from the autoregressive twin keeps its next-token head."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from models.checkpoints import read_json, write_manifest
from models.text import train
from models.text.decoding import TextRequest
from models.text.model import load_text_model
from models.text.network import TextModelConfig, TextTransformer
from models.text.sample import sample_diffusion
from tests.models.test_text_train import STORIES, texts, tiny_run  # noqa: F401 (texts is a fixture)

SMALL = TextModelConfig(vocab_size=64, context=16, width=32, depth=1, heads=2, dropout=0.0)


def test_a_shifted_network_reads_each_position_from_the_one_before() -> None:
    torch.manual_seed(0)
    plain = TextTransformer(SMALL).eval()
    shifted = TextTransformer(dataclasses.replace(SMALL, shift=True)).eval()
    shifted.load_state_dict(plain.state_dict())  # the same weights: only the reading differs
    ids = torch.randint(2, 64, (3, 10))
    with torch.inference_mode():
        before, after = plain.features(ids), shifted.features(ids)
        torch.testing.assert_close(after[:, 1:], before[:, :-1])
        torch.testing.assert_close(after[:, :1], before[:, :1])  # position 0 keeps its own
        torch.testing.assert_close(shifted(ids), shifted.head(after))


def test_the_causal_twin_cannot_shift() -> None:
    with pytest.raises(ValueError, match="shift is for the diffusion model"):
        TextTransformer(dataclasses.replace(SMALL, causal=True, shift=True))


def test_checkpoints_from_before_shift_still_load_strictly() -> None:
    old = {k: v for k, v in SMALL.to_dict().items() if k != "shift"}
    assert TextModelConfig.from_json(old) == SMALL
    with pytest.raises(ValueError, match="unknown"):
        TextModelConfig.from_json({**old, "shift": True, "tilt": 1})


def test_a_shifted_diffusion_model_trains_from_the_twin_and_samples(texts: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    data, valid = texts
    tiny_run("ar", data, valid, tmp_path / "ar", 2)
    tokenizer = str(tmp_path / "ar" / "tokenizer.json")
    run = tmp_path / "dlm"
    tiny_run("diffusion", data, valid, run, 2, "--shift", "--init-from", str(tmp_path / "ar"), "--tokenizer", tokenizer)
    assert read_json(run / "config.json")["shift"] is True
    write_manifest(run)  # as publishing does: a run folder is not a checkpoint yet
    model = load_text_model(run)
    assert model.network.config.shift
    frames = list(sample_diffusion(model, TextRequest(prompt="Once", length=6, steps=3)))
    assert frames[-1].masked == 0
    with pytest.raises(SystemExit):
        train.main(["--kind", "ar", "--shift", "--data", str(data), "--valid", str(valid), "--out", str(tmp_path / "x")])
