"""The judge: loaded only as committed, and scoring text (not token ids) the way its docstring says."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from models.checkpoints import CHECKPOINT_ROOT, ChecksumError
from models.frames import FIXED, NEW, TextFrame, TextToken
from models.text.judge import JUDGE_NAME, Judge, Segment, judge_frame, load_judge, words_of

JUDGE = CHECKPOINT_ROOT / JUDGE_NAME


@pytest.fixture(scope="module")
def judge() -> Judge:
    return load_judge(JUDGE)


@pytest.mark.real_model
def test_the_judge_loads_from_its_manifest_and_is_not_either_twin(judge: Judge) -> None:
    assert judge.model.causal and judge.model.trained
    card = json.loads((JUDGE / "training_summary.json").read_text())
    twin = json.loads((CHECKPOINT_ROOT / "text-ar" / "training_summary.json").read_text())
    assert card["args"]["seed"] != twin["args"]["seed"]  # trained apart, its own seed
    assert judge.model.network.parameter_count() > 1.2 * 5_246_208  # larger than the twin
    assert len(judge.words) > 5000 and "once" in judge.words and "lily" in judge.words


@pytest.mark.real_model
@pytest.mark.parametrize("tampered", ["words.json", "model.safetensors"])
def test_a_tampered_judge_is_refused_loudly(tmp_path: Path, tampered: str) -> None:
    copy = tmp_path / JUDGE_NAME
    shutil.copytree(JUDGE, copy)
    path = copy / tampered
    path.write_bytes(path.read_bytes()[:-2] + b"\x00\x01")
    with pytest.raises(ChecksumError):
        load_judge(copy)


def test_words_are_letters_with_inner_apostrophes_and_the_end_mark_is_no_word() -> None:
    assert words_of("Lily's dog didn\u2019t bark.<|endoftext|>Once") == ["lily's", "dog", "didn't", "bark", "once"]


@pytest.mark.real_model
def test_only_the_generated_text_is_scored_and_the_context_conditions_it(judge: Judge) -> None:
    given, written = "Once upon a time", ", there was a little girl named Lily."
    with_context = judge.measure([Segment(given, False), Segment(written, True)])
    alone = judge.measure([Segment(written, True)])
    assert with_context.counted == with_context.words == len(words_of(written)) == 7
    assert with_context.nll != alone.nll  # the prompt is read, not scored
    quality = judge.score([Segment(given, False), Segment(written, True)])
    assert quality.judge_ppl == round(math.exp(with_context.nll / 7), 2) and quality.real_words == 1.0
    gibberish = judge.score([Segment(given, False), Segment(", there a a grurh The waslf thank car he he", True)])
    assert gibberish.judge_ppl is not None and quality.judge_ppl is not None and gibberish.real_words is not None
    assert gibberish.judge_ppl > 3 * quality.judge_ppl and gibberish.real_words < 1.0


@pytest.mark.real_model
def test_text_longer_than_the_context_is_read_in_windows(judge: Judge) -> None:
    story = "Tom and Lily went to the park. They played with a red ball. " * 30  # over 256 judge tokens
    assert len(judge.model.tokenizer.encode(story).ids) > judge.model.context
    quality = judge.score([Segment("Once upon a time. ", False), Segment(story, True)])
    assert quality.judge_ppl is not None and quality.judge_ppl < 20  # repeated simple text: predictable
    assert quality.words == len(words_of(story))


@pytest.mark.real_model
def test_a_frame_is_judged_on_its_decoded_runs(judge: Judge) -> None:
    tokenizer = judge.model.tokenizer
    prompt_ids = tokenizer.encode("Once upon a time").ids
    written_ids = tokenizer.encode(", there was a dog.").ids
    tokens = tuple(TextToken(FIXED, i, "", 1.0) for i in prompt_ids) + tuple(TextToken(NEW, i, "", 0.5) for i in written_ids)
    frame = TextFrame(step=1, total=1, tokens=tokens, forward_passes=1)
    direct = judge.score([Segment(tokenizer.decode(prompt_ids), False), Segment(tokenizer.decode(written_ids), True)])
    assert judge_frame(judge, judge.model, frame) == direct


def test_only_a_causal_model_may_judge() -> None:
    from models.text.model import untrained_text_model

    with pytest.raises(ValueError, match="causal"):
        Judge(untrained_text_model(causal=False), frozenset())
    assert torch.is_grad_enabled()  # scoring runs under inference_mode, never leaks it
