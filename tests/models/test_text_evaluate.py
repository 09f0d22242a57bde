"""Recording an evaluation into checkpoint folders: the card section is replaced, not stacked; the manifest stays true."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.checkpoints import verify_manifest, write_manifest
from models.text import evaluate as text_evaluate
from models.text.card import replace_samples
from models.text.decoding import Decoding
from models.text.evaluate import (
    EVALUATION_HEADING,
    PROMPTS,
    closest_to_target,
    evaluate,
    evaluation_section,
    main,
    record,
    sample_quality,
)
from models.text.model import TextModel, untrained_text_model

RESULT = {
    "heldout_windows": 3,
    "heldout_tokens": 768,
    "samples_per_model": 2,
    "sample_length": 64,
    "diffusion_steps": 32,
    "decoding": {"strategy": "confidence", "temperature": 1.0, "block_length": 8},
    "diffusion_nelbo": 3.3,
    "diffusion_nelbo_stderr": 0.01,
    "ar_nll": 2.6,
    "nelbo_to_nll_ratio": 1.2692,
    "gen_ppl_diffusion": 9.0,
    "gen_ppl_ar": 6.0,
    "distinct2_diffusion": 0.5,
    "distinct2_ar": 0.6,
    "ms_per_step_diffusion": 30.0,
    "ms_per_step_ar": 20.0,
    "decoding_sweep": [{"strategy": "random", "temperature": 0.8, "block_length": 0, "gen_ppl": 18.0, "distinct2": 0.6}],
}


def test_record_writes_json_card_section_and_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "text-diffusion"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "MODEL_CARD.md").write_text("# text-diffusion\n\n## Samples\n\n1. Once upon a time\n")
    write_manifest(folder)

    record(RESULT, [folder])
    record({**RESULT, "ar_nll": 2.5}, [folder])  # a second evaluation replaces the first

    card = (folder / "MODEL_CARD.md").read_text()
    assert card.count(EVALUATION_HEADING) == 1
    assert "1. Once upon a time" in card and "NLL 2.5000" in card and "| random | 0.8 | off | 18.00 | 0.600 |" in card
    assert "<= 2x: 1.50x" in card
    assert json.loads((folder / "evaluation.json").read_text())["ar_nll"] == 2.5
    verify_manifest(folder)  # evaluation.json is covered and matches
    assert "evaluation.json" in (folder / "SHA256SUMS").read_text()


def test_record_can_replace_the_cards_samples_and_keeps_every_other_section(tmp_path: Path) -> None:
    folder = tmp_path / "text-ar"
    folder.mkdir()
    card = "# text-ar\n\n## Training\n\n- data\n\n## Samples (96 tokens, seeds 0-4, temperature 1.0)\n\n1. old\n2. older\n"
    (folder / "MODEL_CARD.md").write_text(card)
    record(RESULT, [folder])
    record(RESULT, [folder], {folder: ("## Samples (96 tokens, seeds 0-4, temperature 0.9)", ["new one", "new two"])})

    text = (folder / "MODEL_CARD.md").read_text()
    assert "old" not in text and "1. new one\n2. new two\n\n" + EVALUATION_HEADING in text
    assert text.startswith("# text-ar\n\n## Training\n\n- data\n\n## Samples (96 tokens, seeds 0-4, temperature 0.9)\n\n1.")
    assert text.count(EVALUATION_HEADING) == 1
    verify_manifest(folder)


def test_a_card_without_samples_cannot_have_them_replaced() -> None:
    with pytest.raises(ValueError, match="no samples section"):
        replace_samples("# card\n\n## Training\n", ["a"], "## Samples (1 token)")


def test_closest_to_target_names_the_frontier_of_the_sweep() -> None:
    def row(strategy: str, ppl: float, distinct: float) -> dict:
        return {"strategy": strategy, "temperature": 1.0, "block_length": 16, "gen_ppl": ppl, "distinct2": distinct}

    sweep = [row("confidence", 7.0, 0.37), row("margin", 12.0, 0.55), row("random", 40.0, 0.72), row("entropy", 48.0, 0.73)]
    line = closest_to_target({**RESULT, "gen_ppl_ar": 16.0, "distinct2_ar": 0.71, "decoding_sweep": sweep})
    assert "within 2x the twin's gen-ppl: margin at 1.0, blocks 16 (gen-ppl 12.00, distinct-2 0.550)" in line
    assert "as varied as the twin: random at 1.0, blocks 16 (gen-ppl 40.00" in line

    line = closest_to_target({**RESULT, "gen_ppl_ar": 1.0, "distinct2_ar": 0.99, "decoding_sweep": sweep})
    assert line == "No decoding is within 2x the twin's gen-ppl. No decoding is as varied as the twin."


def test_seeds_sets_the_samples_per_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("Once upon a time there was a cat. It sat in the sun all day.\n" * 12)
    drawn: list[tuple[bool, str, int]] = []
    real_generate = text_evaluate.generate

    def recording_generate(
        model: TextModel, prompt: str, length: int, steps: int, seed: int, decoding: Decoding
    ) -> tuple[list[int], list[int], float]:
        drawn.append((model.network.config.causal, prompt, seed))
        return real_generate(model, prompt, length, steps, seed, decoding)

    monkeypatch.setattr(text_evaluate, "generate", recording_generate)
    result = evaluate(untrained_text_model(causal=False), untrained_text_model(causal=True), valid, False, length=4, seeds=2)
    assert (result["samples_per_model"], result["seeds"], result["quick"]) == (2 * len(PROMPTS), 2, False)
    # each model draws every prompt with seeds 0 and 1, and nothing else
    assert sorted(drawn) == sorted((causal, prompt, seed) for causal in (False, True) for prompt in PROMPTS for seed in (0, 1))
    assert "--seeds 2" in evaluation_section(result)


def test_the_card_line_names_a_quick_run_as_quick(tmp_path: Path) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("Once upon a time there was a cat. It sat in the sun all day.\n" * 12)
    result = evaluate(untrained_text_model(causal=False), untrained_text_model(causal=True), valid, True, length=4)
    line = evaluation_section(result).splitlines()[2]
    assert line.startswith("`python -m models.text.evaluate --json --quick`") and "--seeds" not in line


def test_seeds_below_one_is_refused_before_any_model_loads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--seeds", "0", "--diffusion", "no-such-folder"])
    assert "--seeds must be at least 1" in capsys.readouterr().err


def test_first_seed_moves_the_samples_to_other_seeds(tmp_path: Path) -> None:
    diffusion, ar = untrained_text_model(causal=False), untrained_text_model(causal=True)
    decoding = Decoding("random", 1.0, 0)
    same = [sample_quality(diffusion, ar, decoding, PROMPTS[:2], 2, 6, 6, first_seed=3) for _ in range(2)]
    other = sample_quality(diffusion, ar, decoding, PROMPTS[:2], 2, 6, 6)
    assert same[0]["gen_ppl"] == same[1]["gen_ppl"] and other["gen_ppl"] != same[0]["gen_ppl"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--first-seed", "-1"], "--first-seed must be at least 0"),
        (["--first-seed", "16", "--record"], "not with --first-seed"),
    ],
)
def test_first_seed_is_refused_below_zero_and_with_record(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--diffusion", "no-such-folder"])
    assert message in capsys.readouterr().err
