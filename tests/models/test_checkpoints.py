import pytest
import torch

from models.checkpoints import ChecksumError, load_weights, save_weights, verify_manifest, write_json, write_manifest
from models.text.network import TextModelConfig, TextTransformer
from models.text.tokenizer import special_ids, train_tokenizer_from_iterator


def test_save_load_round_trip_and_manifest(tmp_path):
    config = TextModelConfig(vocab_size=300, width=32, depth=1, heads=2)
    model = TextTransformer(config)
    save_weights(model, tmp_path / "model.safetensors")
    write_json(tmp_path / "config.json", config.to_dict())
    write_manifest(tmp_path)
    verify_manifest(tmp_path)
    clone = TextTransformer(config)
    load_weights(clone, tmp_path / "model.safetensors")
    ids = torch.randint(0, 300, (1, 10))
    model.eval(), clone.eval()
    assert torch.equal(model(ids), clone(ids))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ChecksumError):
        verify_manifest(tmp_path)


def test_half_precision_save_loads_into_float_model(tmp_path):
    model = TextTransformer(TextModelConfig(vocab_size=300, width=32, depth=1, heads=2))
    save_weights(model, tmp_path / "m.safetensors", half=True)
    clone = TextTransformer(model.config)
    load_weights(clone, tmp_path / "m.safetensors")
    assert clone.embed.weight.dtype == torch.float32
    assert torch.allclose(clone.embed.weight, model.embed.weight, atol=1e-3)


def test_strict_load_refuses_a_different_shape(tmp_path):
    save_weights(TextTransformer(TextModelConfig(vocab_size=300, width=32, depth=1, heads=2)), tmp_path / "m.safetensors")
    with pytest.raises(RuntimeError):
        load_weights(TextTransformer(TextModelConfig(vocab_size=300, width=32, depth=2, heads=2)), tmp_path / "m.safetensors")


def test_tokenizer_round_trips_any_text():
    tokenizer = train_tokenizer_from_iterator(["Once upon a time there was a cat."] * 20, vocab_size=300)
    for text in ["Once upon a time", "naïve café — “quotes” 🙂", "\n\ttabs and\nlines", ""]:
        assert tokenizer.decode(tokenizer.encode(text).ids) == text
    eos, mask = special_ids(tokenizer)
    assert tokenizer.decode([eos, mask], skip_special_tokens=False) == "<|endoftext|>[MASK]"


def test_configs_load_strictly():
    config = TextModelConfig(vocab_size=300)
    assert TextModelConfig.from_json(config.to_dict()) == config
    partial = config.to_dict()
    del partial["depth"]
    with pytest.raises(ValueError, match="depth"):
        TextModelConfig.from_json(partial)
    with pytest.raises(ValueError, match="colour"):
        TextModelConfig.from_json({**config.to_dict(), "colour": "red"})
