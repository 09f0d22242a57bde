"""Measure BPE vocabulary sizes on held-out text: how many words come out whole, and what a size costs.

A word is "whole" when one token covers it (byte-level pieces carry the space before a word, so " village"
is one token while "v", "ill", "age" are three). Everything is measured on the validation text, which the
tokenizers never see; the training text only gives the token count an epoch costs.

    python -m models.text.tokenizer_sweep --data train.txt --valid valid.txt --sizes 2048 4096 6144 8192
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenizers import Tokenizer

from models.text.data import read_stories
from models.text.judge import WORD
from models.text.tokenizer import train_tokenizer

TOKENS_PER_STEP = 16 * 256  # the text models' batch x context


def whole_word_share(tokenizer: Tokenizer, stories: list[str]) -> tuple[float, float, int]:
    """(share of word occurrences one token covers, tokens per word, words counted)."""
    whole = words = tokens = 0
    for story, encoding in zip(stories, tokenizer.encode_batch(stories), strict=True):
        tokens += len(encoding.ids)
        spans = encoding.offsets
        index = 0
        for match in WORD.finditer(story.lower()):  # the judge's words (lowering keeps ASCII offsets)
            start, end = match.span()
            words += 1
            while index < len(spans) and spans[index][1] <= start:
                index += 1
            if index < len(spans) and spans[index][0] <= start and spans[index][1] >= end:
                whole += 1
    return whole / max(words, 1), tokens / max(words, 1), words


def measure(data: Path, valid: Path, size: int) -> dict[str, float | int]:
    tokenizer = train_tokenizer([data], size)
    held_out = read_stories(valid)
    share, per_word, words = whole_word_share(tokenizer, held_out)
    train_tokens = sum(len(e.ids) + 1 for e in tokenizer.encode_batch(read_stories(data)))
    return {
        "vocab": tokenizer.get_vocab_size(),
        "heldout_whole_word_share": round(share, 4),
        "heldout_tokens_per_word": round(per_word, 4),
        "heldout_words": words,
        "train_tokens": train_tokens,
        "steps_per_epoch": round(train_tokens / TOKENS_PER_STEP, 1),
        "head_parameters": tokenizer.get_vocab_size() * 256,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="training text (the tokenizers train on it)")
    p.add_argument("--valid", type=Path, required=True, help="held-out text (every figure but train_tokens)")
    p.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 6144, 8192])
    args = p.parse_args(argv)
    for size in args.sizes:
        print(json.dumps(measure(args.data, args.valid, size)), flush=True)


if __name__ == "__main__":
    main()
