"""MODEL_CARD.md for a text model: training facts, held-out metrics and ten samples.

Written by the training CLI when a run finishes and again by `publish` (which adds the fp16 check).
"""

from __future__ import annotations

from pathlib import Path

from models.text.model import TextModel
from models.text.network import TextModelConfig
from models.text.sample import DEFAULT_DECODING, TextRequest, final_text, sample_autoregressive, sample_diffusion

CARD_PROMPTS = ("Once upon a time", "Lily and Tom")
SAMPLE_TOKENS = 96


def card_samples(model: TextModel) -> list[str]:
    """Ten samples in the default decoding: five seeds for each card prompt."""
    sampler = sample_autoregressive if model.causal else sample_diffusion
    samples = []
    for prompt in CARD_PROMPTS:
        length = min(SAMPLE_TOKENS, model.context - len(model.tokenizer.encode(prompt).ids))  # a small test model
        for seed in range(5):
            request = TextRequest(prompt=prompt, length=length, steps=length, seed=seed)
            *_, last = sampler(model, request)
            samples.append(final_text(model, last).replace("\n", " "))
    return samples


SAMPLES_HEADING = "## Samples ("


def samples_heading(causal: bool) -> str:
    """The samples section's heading: how they were drawn (the default decoding, for the diffusion model)."""
    d = DEFAULT_DECODING
    decoding = (
        f"temperature {d.temperature}"
        if causal
        else f"{SAMPLE_TOKENS} steps, strategy {d.strategy}, temperature {d.temperature}, block length {d.block_length or 'off'}"
    )
    return f"{SAMPLES_HEADING}{SAMPLE_TOKENS} tokens, seeds 0-4, {decoding})"


def replace_samples(card: str, samples: list[str], heading: str) -> str:
    """The card with its samples' heading and list replaced (every other section kept): samples follow the
    sampler and the default decoding, so a change to either makes the old ones unreproducible."""
    head, found, rest = card.partition(SAMPLES_HEADING)
    if not found:
        raise ValueError("the model card has no samples section")
    _, _, body = rest.partition("\n")
    after = body.split("\n## ", 1)
    tail = "\n\n## " + after[1] if len(after) == 2 else "\n"
    listed = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(samples))
    return f"{head}{heading}\n\n{listed}{tail}"


def write_model_card(
    folder: Path, name: str, config: TextModelConfig, summary: dict, metric_lines: list[str], samples: list[str]
) -> None:
    kind = "autoregressive (causal) twin" if config.causal else "masked-diffusion (MDLM) model"
    metric = "next-token NLL" if config.causal else "NELBO (upper bound on NLL)"
    lines = [
        f"# {name}",
        "",
        f"A {summary['parameters']:,}-parameter pre-norm transformer with rotary positions, used as the {kind}.",
        "Same width, depth, context, tokenizer and data as its twin; the only architectural difference is the",
        "`causal` flag.",
        "",
        "## Training",
        "",
        f"- data: {summary['args'].get('data', 'training text')} ({summary['train_tokens']:,} tokens), "
        f"sha256 `{summary['data_sha256']}`",
        f"- held-out: {summary['args'].get('valid', 'held-out text')} (quotes repaired), sha256 `{summary['valid_sha256']}`",
        f"- best held-out step {summary['best_step']}, tokens seen {summary['tokens_seen']:,}, epochs {summary['epochs']:.2f}",
        f"- wall time {summary['wall_seconds'] / 60:.1f} min on {summary['hardware']}",
        f"- initialised from: {summary['init_from'] or 'scratch'}"
        + (
            f"; trained in {summary['stages']} stages, each continuing the last (training.csv joins them)"
            if summary.get("stages")
            else ""
        ),
        f"- config: `{config.to_dict()}`",
        "",
        "## Held-out metrics",
        "",
        f"- {metric}: **{summary['best_heldout_loss']:.4f} nats/token** at training time (best step), on the held-out "
        "windows that chose the checkpoint",
        *metric_lines,
        "- `python -m models.text.evaluate --json` compares it with its twin (see the project README).",
        "",
        samples_heading(config.causal),
        "",
    ]
    lines += [f"{i + 1}. {s}" for i, s in enumerate(samples)]
    (folder / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")
