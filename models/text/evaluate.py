"""Evaluate the text models on held-out text and print one JSON object.

    python -m models.text.evaluate --json [--quick]

diffusion_nelbo / ar_nll: nats per token on held-out windows (NELBO averaged over stratified mask rates);
gen_ppl_*: perplexity under the AR twin of samples from each model (same prompts, length, temperature;
the decoding is the samplers' default unless --strategy/--temperature/--block-length say otherwise);
distinct2_*: share of distinct token bigrams in those samples; ms_per_step_*: sampler speed at batch 1.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch

from models.checkpoints import CHECKPOINT_ROOT, write_json, write_manifest
from models.text.card import card_samples, replace_samples, samples_heading
from models.text.data import encode_stream, fixed_windows, read_stories
from models.text.decoding import DEFAULT_DECODING, STRATEGIES, Decoding, TextRequest
from models.text.model import TextModel, load_text_model
from models.text.network import TextTransformer
from models.text.objectives import ar_loss, mdlm_loss, stratified_mask_rates
from models.text.quantize import int8_model
from models.text.sample import sample_autoregressive, sample_diffusion

HELDOUT_TEXT = Path(__file__).resolve().parents[1] / "evaluation_data" / "tinystories-valid-head.txt"
PROMPTS = (
    "Once upon a time",
    "Lily and Tom",
    "One day, a little",
    "Tom had a big",
    "The sun was",
    "Sara wanted to",
    "There was a dog",
    "Mom said",
)
# Decodings compared by --sweep: whole-canvas vs semi-autoregressive blocks, and confident-first against the
# orders that commit whatever was drawn (why that matters for variety: `_scores` in models/text/sample.py).
SWEEP = (
    Decoding("confidence", 0.8, 0),
    Decoding("confidence", 1.0, 0),
    Decoding("confidence", 0.8, 16),
    Decoding("confidence", 1.0, 16),
    Decoding("confidence", 1.0, 8),
    Decoding("random", 0.8, 0),
    Decoding("random", 0.8, 1),
    Decoding("random", 1.0, 0),
    Decoding("random", 1.0, 1),
    Decoding("margin", 1.0, 16),
    Decoding("entropy", 1.0, 16),
    Decoding("entropy", 1.0, 8),
)


@torch.inference_mode()
def heldout_nll(network: TextTransformer, windows: torch.Tensor) -> float:
    return sum(ar_loss(network, chunk).item() * len(chunk) for chunk in windows.split(32)) / len(windows)


@torch.inference_mode()
def heldout_nelbo(network: TextTransformer, windows: torch.Tensor, draws: int, seed: int = 0) -> float:
    return heldout_nelbo_with_error(network, windows, draws, seed)[0]


@torch.inference_mode()
def heldout_nelbo_with_error(network: TextTransformer, windows: torch.Tensor, draws: int, seed: int = 0) -> tuple[float, float]:
    """(NELBO, its standard error) in nats/token: each pass is an unbiased estimate over a stratified
    batch of mask rates, so the spread of the passes tells how stable the average is."""
    generator = torch.Generator().manual_seed(seed)
    passes = []
    for _ in range(draws):
        total = 0.0
        for chunk in windows.split(32):
            t = stratified_mask_rates(len(chunk), generator)
            total += mdlm_loss(network, chunk, t, generator).item() * len(chunk)
        passes.append(total / len(windows))
    mean = sum(passes) / draws
    spread = (sum((p - mean) ** 2 for p in passes) / max(1, draws - 1)) ** 0.5
    return mean, spread / draws**0.5


@torch.inference_mode()
def nll_under(ar: TextModel, prompt_ids: list[int], generated: list[int]) -> float:
    """Mean negative log-likelihood (nats per token) of `generated` after the prompt, under the AR twin."""
    ids = torch.tensor([prompt_ids + generated])
    logits = ar.network(ids[:, :-1])[0, len(prompt_ids) - 1 :]
    nll = torch.nn.functional.cross_entropy(logits, ids[0, len(prompt_ids) :])
    return float(nll)


def distinct_bigrams(samples: list[list[int]]) -> float:
    bigrams = [tuple(s[i : i + 2]) for s in samples for i in range(len(s) - 1)]
    return len(set(bigrams)) / max(1, len(bigrams))


def generate(
    model: TextModel, prompt: str, length: int, steps: int, seed: int, decoding: Decoding
) -> tuple[list[int], list[int], float]:
    """(prompt ids, generated ids, ms per step). The causal twin only uses the temperature."""
    request = TextRequest(
        prompt=prompt,
        length=length,
        steps=steps,
        seed=seed,
        temperature=decoding.temperature,
        strategy=decoding.strategy,
        block_length=decoding.block_length,
    )
    sampler = sample_autoregressive if model.causal else sample_diffusion
    started = time.perf_counter()
    frames = list(sampler(model, request))
    elapsed = (time.perf_counter() - started) * 1000 / max(1, len(frames) - 1)
    prompt_ids: list[int] = []
    generated: list[int] = []
    for token in frames[-1].tokens:
        if token.token_id is None:
            raise ValueError("the last frame still has a blank position")
        (prompt_ids if token.state == "fixed" else generated).append(token.token_id)
    return prompt_ids, generated, elapsed


def sample_quality(
    model: TextModel,
    ar: TextModel,
    decoding: Decoding,
    prompts: tuple[str, ...],
    seeds: int,
    length: int,
    steps: int,
    first_seed: int = 0,
) -> dict[str, float]:
    """gen_ppl (perplexity of the samples under the AR twin), distinct2 and median ms per step."""
    samples, nlls, speeds = [], [], []
    for prompt in prompts:
        for seed in range(first_seed, first_seed + seeds):
            prompt_ids, generated, ms = generate(model, prompt, length, steps, seed, decoding)
            samples.append(generated)
            nlls.append(nll_under(ar, prompt_ids, generated))
            speeds.append(ms)
    return {
        "gen_ppl": math.exp(sum(nlls) / len(nlls)),
        "distinct2": distinct_bigrams(samples),
        "ms_per_step": sorted(speeds)[len(speeds) // 2],
    }


def evaluate(
    diffusion: TextModel,
    ar: TextModel,
    valid: Path,
    quick: bool,
    decoding: Decoding = DEFAULT_DECODING,
    length: int = 64,
    sweep: bool = False,
    seeds: int = 4,
    first_seed: int = 0,
) -> dict:
    windows = fixed_windows(encode_stream(ar.tokenizer, read_stories(valid)), ar.context)
    if quick:
        windows = windows[:16]
    results: dict = {"heldout_windows": len(windows), "heldout_tokens": windows.numel()}
    results["ar_nll"] = heldout_nll(ar.network, windows)
    nelbo, stderr = heldout_nelbo_with_error(diffusion.network, windows, draws=2 if quick else 16)
    results["diffusion_nelbo"], results["diffusion_nelbo_stderr"] = nelbo, stderr
    results["diffusion_nelbo_relative_error"] = stderr / nelbo  # the NELBO target asks for an estimate stable within 1%
    results["nelbo_to_nll_ratio"] = results["diffusion_nelbo"] / results["ar_nll"]
    seeds = 1 if quick else seeds
    prompts = PROMPTS[:2] if quick else PROMPTS
    steps = length // 2 if quick else length
    measured: dict[Decoding, dict[str, float]] = {}
    if sweep:  # the trade-off between fluency and variety across decodings of the same diffusion model
        measured = {d: sample_quality(diffusion, ar, d, prompts, seeds, length, steps, first_seed) for d in SWEEP}
        results["decoding_sweep"] = [{**asdict(d), **quality} for d, quality in measured.items()]
    for name, model in (("diffusion", diffusion), ("ar", ar)):
        cached = measured.get(decoding) if name == "diffusion" else None  # same seeds: the same samples
        quality = cached or sample_quality(model, ar, decoding, prompts, seeds, length, steps, first_seed)
        for key, value in quality.items():
            results[f"{key}_{name}"] = value
    if first_seed:  # a check on other seeds than the cards' (which always start at 0)
        results["first_seed"] = first_seed
    results.update(samples_per_model=len(prompts) * seeds, seeds=seeds, quick=quick)
    results.update(sample_length=length, diffusion_steps=steps, decoding=asdict(decoding))
    return {key: _rounded(value) for key, value in results.items()}


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@torch.inference_mode()
def heldout_loss(network: TextTransformer, windows: torch.Tensor, draws: int = 8, seed: int = 0) -> float:
    """The model's own held-out loss: NLL for the causal twin, NELBO for the diffusion model."""
    was_training = network.training
    network.eval()
    try:
        return heldout_nll(network, windows) if network.config.causal else heldout_nelbo(network, windows, draws, seed)
    finally:
        network.train(was_training)


EVALUATION_HEADING = "## Evaluation against the twin"


def evaluation_section(result: dict) -> str:
    """Markdown for the model cards: the documented targets beside the measured values."""
    r = result
    seeds = r.get("seeds", r["samples_per_model"] // len(PROMPTS))  # results recorded before "seeds" existed
    flags = " --sweep" if "decoding_sweep" in r else ""
    flags += " --quick" if r.get("quick") else (f" --seeds {seeds}" if seeds != 4 else "")  # --quick fixes the seeds
    flags += f" --first-seed {r['first_seed']}" if r.get("first_seed") else ""
    lines = [
        EVALUATION_HEADING,
        "",
        f"`python -m models.text.evaluate --json{flags}` on "
        f"{r['heldout_windows']} held-out windows ({r['heldout_tokens']:,} tokens); samples: "
        f"{r['samples_per_model']} per model, {r['sample_length']} tokens, {r['diffusion_steps']} diffusion steps, "
        f"decoding {r['decoding']}.",
        "",
        "| measure | diffusion | autoregressive | target |",
        "| --- | --- | --- | --- |",
        f"| held-out loss, nats/token | NELBO {r['diffusion_nelbo']:.4f} (+-{r['diffusion_nelbo_stderr']:.4f}) "
        f"| NLL {r['ar_nll']:.4f} | NELBO <= 1.10x NLL: {r['nelbo_to_nll_ratio']:.3f}x |",
        f"| gen-ppl under the AR twin | {r['gen_ppl_diffusion']:.2f} | {r['gen_ppl_ar']:.2f} "
        f"| <= 2x: {r['gen_ppl_diffusion'] / r['gen_ppl_ar']:.2f}x |",
        f"| distinct-2 | {r['distinct2_diffusion']:.3f} | {r['distinct2_ar']:.3f} | diffusion >= AR |",
        f"| ms per step (batch 1) | {r['ms_per_step_diffusion']:.1f} | {r['ms_per_step_ar']:.1f} | |",
    ]
    if "decoding_sweep" in r:
        lines += [
            "",
            "Decodings of the diffusion model (fluency against variety):",
            "",
            "| strategy | temperature | block length | gen-ppl | distinct-2 |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {d['strategy']} | {d['temperature']} | {d['block_length'] or 'off'} | {d['gen_ppl']:.2f} | {d['distinct2']:.3f} |"
            for d in r["decoding_sweep"]
        ]
        lines += ["", closest_to_target(r)]
    return "\n".join(lines) + "\n"


def closest_to_target(result: dict) -> str:
    """One line: the most varied decoding within 2x the twin's gen-ppl, and the most fluent one at least
    as varied as the twin (a decoding in both would meet the sample-quality target)."""
    sweep, ppl_cap, variety = result["decoding_sweep"], 2 * result["gen_ppl_ar"], result["distinct2_ar"]
    fluent = [d for d in sweep if d["gen_ppl"] <= ppl_cap]
    varied = [d for d in sweep if d["distinct2"] >= variety]

    def name(d: dict) -> str:
        return (
            f"{d['strategy']} at {d['temperature']}, blocks {d['block_length'] or 'off'} "
            f"(gen-ppl {d['gen_ppl']:.2f}, distinct-2 {d['distinct2']:.3f})"
        )

    parts = [
        f"Most varied within 2x the twin's gen-ppl: {name(max(fluent, key=lambda d: d['distinct2']))}."
        if fluent
        else "No decoding is within 2x the twin's gen-ppl."
    ]
    parts.append(
        f"Most fluent at least as varied as the twin: {name(min(varied, key=lambda d: d['gen_ppl']))}."
        if varied
        else "No decoding is as varied as the twin."
    )
    return " ".join(parts)


def record(result: dict, folders: list[Path], samples: dict[Path, tuple[str, list[str]]] | None = None) -> None:
    """Write the result into checkpoint folders: evaluation.json, a model-card section, a fresh manifest; and,
    where `samples` has the folder's model's card samples drawn now (with the heading that says how), those in
    place of the card's old ones."""
    for folder in folders:
        write_json(folder / "evaluation.json", result)
        card = folder / "MODEL_CARD.md"
        text = card.read_text()
        if samples and folder in samples:
            heading, drawn = samples[folder]
            text = replace_samples(text, drawn, heading)
        kept = text.split(EVALUATION_HEADING)[0].rstrip()
        card.write_text(kept + "\n\n" + evaluation_section(result))
        write_manifest(folder)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--diffusion", type=Path, default=CHECKPOINT_ROOT / "text-diffusion")
    p.add_argument("--ar", type=Path, default=CHECKPOINT_ROOT / "text-ar")
    p.add_argument("--valid", type=Path, default=HELDOUT_TEXT, help="held-out text (never the training text)")
    p.add_argument("--quick", action="store_true", help="a small slice: under a minute")
    p.add_argument("--json", action="store_true", help="print one JSON object (the default output anyway)")
    p.add_argument("--strategy", default=DEFAULT_DECODING.strategy, choices=STRATEGIES)
    p.add_argument("--temperature", type=float, default=DEFAULT_DECODING.temperature)
    p.add_argument("--block-length", type=int, default=DEFAULT_DECODING.block_length)
    p.add_argument("--sweep", action="store_true", help="also compare several decodings (a few minutes more)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="the samples' first seed: check a decoding picked from one measurement on seeds that did not pick it",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=4,
        help="samples per prompt (the cards use 4: 32 samples; more narrows the noise of gen-ppl and distinct-2)",
    )
    p.add_argument("--int8", action="store_true", help="the diffusion model with int8 dynamic quantisation (the twin judges)")
    p.add_argument(
        "--record",
        action="store_true",
        help="write the result into both checkpoint folders (evaluation.json, MODEL_CARD.md with fresh samples, manifest)",
    )
    args = p.parse_args(argv)
    decoding = Decoding(args.strategy, args.temperature, args.block_length)
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.first_seed < 0:
        p.error("--first-seed must be at least 0")
    if args.record and args.first_seed:
        p.error("--record writes the cards' figures, always from seed 0: not with --first-seed")
    if args.record and args.int8:
        p.error("--record writes the published model's figures: not with --int8")
    diffusion = load_text_model(args.diffusion)
    if args.int8:
        diffusion = int8_model(diffusion)
    ar = load_text_model(args.ar)
    result = evaluate(
        diffusion, ar, args.valid, args.quick, decoding, sweep=args.sweep, seeds=args.seeds, first_seed=args.first_seed
    )
    result["diffusion_int8"] = args.int8
    if args.record:
        drawn = {
            folder: (samples_heading(m.causal), card_samples(m)) for folder, m in ((args.diffusion, diffusion), (args.ar, ar))
        }
        record(result, [args.diffusion, args.ar], drawn)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
