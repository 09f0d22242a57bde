"""Byte-level BPE tokenizer (HF `tokenizers`) with the two special tokens the models need."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

END_OF_STORY = "<|endoftext|>"
MASK = "[MASK]"
SPECIAL_TOKENS = [END_OF_STORY, MASK]


def train_tokenizer(text_files: list[Path], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    # Byte level: every string round-trips, so prompts with odd characters never fail to encode.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(p) for p in text_files], trainer)
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
