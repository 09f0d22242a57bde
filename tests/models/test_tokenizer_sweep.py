"""The tokenizer sweep's whole-word share: one token covering a word counts, pieces do not."""

from __future__ import annotations

from pathlib import Path

from models.text.tokenizer import train_tokenizer_from_iterator
from models.text.tokenizer_sweep import measure, whole_word_share

STORY = "The cat sat on the mat. The cat ran to the big red barn, and the dog ran after the cat."


def test_a_word_is_whole_when_one_token_covers_it() -> None:
    small = train_tokenizer_from_iterator([STORY] * 20, 260)  # bytes and a few merges: words come in pieces
    large = train_tokenizer_from_iterator([STORY] * 20, 400)  # enough merges for every word of the story
    small_share, small_per_word, words = whole_word_share(small, [STORY])
    large_share, large_per_word, _ = whole_word_share(large, [STORY])
    assert words == 21
    assert large_share == 1.0 and small_share == 0.0
    assert small_per_word > large_per_word >= 1.0  # punctuation tokens count too


def test_measure_reports_held_out_figures_and_the_epoch_cost(tmp_path: Path) -> None:
    data, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    data.write_text(f"{STORY}\n<|endoftext|>\n" * 30)
    valid.write_text("The dog sat on the barn.\n\nA zebra ran.")
    row = measure(data, valid, 300)
    assert row["heldout_words"] == 9
    assert 0 < row["heldout_whole_word_share"] < 1  # "zebra" never occurs in training
    assert row["train_tokens"] > 30 and row["steps_per_epoch"] == round(row["train_tokens"] / 4096, 1)
