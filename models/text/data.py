"""Reading TinyStories-style text into token streams and batches."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import torch
from tokenizers import Tokenizer

from models.text.tokenizer import END_OF_STORY


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 read as cp1252 (e.g. 'â€œ' -> '“'), line by line so one bad line cannot spoil the rest."""
    fixed = []
    for line in text.split("\n"):
        if "â" in line or "Ã" in line:
            with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
                line = line.encode("cp1252").decode("utf-8")
            line = line.replace("â€", "”")
        fixed.append(line)
    return "\n".join(fixed)


def read_stories(path: Path) -> list[str]:
    """Stories of a file: split on end-of-story lines when present, else on blank lines (paragraph level).

    The validation file has no end-of-story markers and separates both stories and paragraphs by blank
    lines, so there each paragraph is a unit; units are joined with newlines like train.txt's paragraphs.
    """
    text = repair_mojibake(path.read_text(encoding="utf-8"))
    if END_OF_STORY in text:
        parts = [p.strip() for p in text.split(END_OF_STORY)]
        return [p for p in parts if p]
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return ["\n".join(paragraphs)]


def encode_stream(tokenizer: Tokenizer, stories: list[str]) -> torch.Tensor:
    """All stories as one long id stream, each followed by the end-of-story token."""
    eos = tokenizer.token_to_id(END_OF_STORY)
    if eos is None:
        raise ValueError(f"the tokenizer has no {END_OF_STORY!r} token")
    ids: list[int] = []
    for encoding in tokenizer.encode_batch(stories):
        ids.extend(encoding.ids)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def random_windows(stream: torch.Tensor, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    starts = torch.randint(0, len(stream) - length, (batch,), generator=generator)
    return torch.stack([stream[s : s + length] for s in starts.tolist()])  # (B, L)


def fixed_windows(stream: torch.Tensor, length: int) -> torch.Tensor:
    """Non-overlapping windows covering the stream (held-out evaluation); callers slice the ones they use."""
    count = len(stream) // length
    return stream[: count * length].view(count, length)
