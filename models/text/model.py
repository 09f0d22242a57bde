"""A text model ready to sample: network + tokenizer + what its checkpoint says about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import Tokenizer

from models.checkpoints import load_weights, read_json, verify_manifest
from models.text.network import TextModelConfig, TextTransformer
from models.text.tokenizer import SPECIAL_TOKENS, load_tokenizer, special_ids, train_tokenizer_from_iterator


@dataclass
class TextModel:
    network: TextTransformer
    tokenizer: Tokenizer
    name: str
    trained: bool
    card: dict = field(default_factory=dict)
    pieces: list[str] = field(default_factory=list)  # decoded text of every token id, computed once

    def __post_init__(self) -> None:
        self.network.eval()
        if not self.pieces:
            self.pieces = [self.tokenizer.decode([i], skip_special_tokens=False) for i in range(self.tokenizer.get_vocab_size())]

    @property
    def causal(self) -> bool:
        return self.network.config.causal

    @property
    def mask_id(self) -> int:
        return self.network.config.mask_id

    @property
    def eos_id(self) -> int:
        return self.network.config.eos_id

    @property
    def context(self) -> int:
        return self.network.config.context


def load_text_network(folder: Path) -> TextTransformer:
    """The network of a checkpoint or training-run folder (config.json, model.safetensors), unverified: a run has
    no manifest until it is published. The app loads through `load_text_model`, which checks one."""
    network = TextTransformer(TextModelConfig.from_json(read_json(folder / "config.json")))
    load_weights(network, folder / "model.safetensors")
    return network


def load_text_model(folder: Path) -> TextModel:
    verify_manifest(folder)
    network = load_text_network(folder)
    card = read_json(folder / "training_summary.json") if (folder / "training_summary.json").exists() else {}
    return TextModel(network, load_tokenizer(folder / "tokenizer.json"), folder.name, trained=True, card=card)


def untrained_text_model(causal: bool, seed: int = 0) -> TextModel:
    """Fresh weights over a bytes-only tokenizer: lets the app run before checkpoints exist."""
    tokenizer = train_tokenizer_from_iterator([], vocab_size=256 + len(SPECIAL_TOKENS))
    eos_id, mask_id = special_ids(tokenizer)
    config = TextModelConfig(
        vocab_size=tokenizer.get_vocab_size(),
        width=64,
        depth=2,
        heads=2,
        causal=causal,
        mask_id=mask_id,
        eos_id=eos_id,
        dropout=0.0,
    )
    with torch.random.fork_rng():  # seeded init without touching the caller's global RNG
        torch.manual_seed(seed)
        network = TextTransformer(config)
    name = "text-ar" if causal else "text-diffusion"
    return TextModel(network, tokenizer, name, trained=False)
