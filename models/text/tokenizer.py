"""Byte-level BPE tokenizer (HF `tokenizers`) with the two special tokens the models need."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

END_OF_STORY = "<|endoftext|>"
MASK = "[MASK]"
SPECIAL_TOKENS = [END_OF_STORY, MASK]


def _empty_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    # Byte level: every string round-trips, so prompts with odd characters never fail to encode.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def _trainer(vocab_size: int) -> trainers.BpeTrainer:
    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )


def train_tokenizer(text_files: list[Path], vocab_size: int) -> Tokenizer:
    tokenizer = _empty_tokenizer()
    tokenizer.train([str(p) for p in text_files], _trainer(vocab_size))
    return tokenizer


def train_tokenizer_from_iterator(texts: list[str], vocab_size: int) -> Tokenizer:
    tokenizer = _empty_tokenizer()
    tokenizer.train_from_iterator(texts, _trainer(vocab_size))
    return tokenizer


def load_tokenizer(path: Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))


def special_ids(tokenizer: Tokenizer) -> tuple[int, int]:
    """(end_of_story_id, mask_id)"""
    eos = tokenizer.token_to_id(END_OF_STORY)
    mask = tokenizer.token_to_id(MASK)
    if eos is None or mask is None:
        raise ValueError("tokenizer lacks the special tokens")
    return eos, mask


def piece(tokenizer: Tokenizer, token_id: int) -> str:
    """Readable text of one token (byte-level pieces decoded; a lone partial UTF-8 byte shows as U+FFFD)."""
    return tokenizer.decode([token_id], skip_special_tokens=False)
