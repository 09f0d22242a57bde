"""The frontier: tokens per forward pass against quality, measured on the committed text models.

    python -m models.text.frontier --out docs/text-frontier.csv [--seeds 16]

One row per decoding setting: the twin (one token a pass), the diffusion model at 1, 2, 4 and 8 tokens a pass
(64, 32, 16 and 8 steps for 64 tokens, the default decoding), confidence-threshold decoding (Fast-dLLM) at a few
thresholds, and ReMDM remasking with 2x and 4x the steps. Each row draws `len(PROMPTS) * seeds` samples (128 by
default) of 64 tokens and reports, pooled over them: the judge's perplexity per word and real-word share
(`models.text.judge`), distinct word bigrams, tokens per pass, the median wall time of a sample, and how left to
right the order was (the share of commits that took the leftmost blank). `--retime N` times N fresh samples a
setting on an idle machine for the wall-time column (the draws may run beside other work).

The pages read the CSV at request time (`/why`, the race); the race's default steps follow `default_race_steps`.
Everything above `measure` is torch-free: the web layer reads the file without the models.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from models.text.judge import Judge
    from models.text.model import TextModel

FRONTIER_CSV = Path(__file__).resolve().parents[2] / "docs" / "text-frontier.csv"
LENGTH = 64
RACE_STEP_CHOICES = (8, 16, 32, 64)  # the race's steps menu for 64 tokens: 8, 4, 2 and 1 tokens a pass
WITHIN_TWIN = 1.5  # the race's default: the fewest steps whose judge perplexity is within this of the twin's


@dataclass(frozen=True)
class Setting:
    name: str
    model: str  # "ar" or "diffusion"
    steps: int
    strategy: str = "entropy"
    temperature: float = 1.0
    block_length: int = 16
    remask: str = "none"
    threshold: float = 0.0  # 0: off


@dataclass(frozen=True)
class Row:
    """One measured setting: the CSV's columns, in order."""

    name: str
    model: str
    steps: int
    strategy: str
    block_length: int
    remask: str
    threshold: float
    samples: int
    tokens_per_pass: float
    judge_ppl: float
    real_words: float
    distinct2: float
    ms_per_sample: float
    in_order: float

    @property
    def plain_diffusion(self) -> bool:
        """The diffusion model in its default decoding, neither thresholded nor remasking: the race's lane."""
        return self.model == "diffusion" and self.remask == "none" and not self.threshold


SETTINGS: tuple[Setting, ...] = (
    Setting("twin", "ar", LENGTH, strategy="", block_length=0),
    *(Setting(f"diffusion, {s} steps", "diffusion", s) for s in sorted(RACE_STEP_CHOICES, reverse=True)),
    *(Setting(f"threshold {tau}", "diffusion", LENGTH, strategy="confidence", threshold=tau) for tau in (0.9, 0.7, 0.5)),
    *(
        Setting(f"remask {r}, {s} steps", "diffusion", s, remask=r)
        for r in ("conf", "loop")
        for s in (LENGTH, 2 * LENGTH, 4 * LENGTH)
    ),
)


# ---------------------------------------------------------------------------------------------------------
# Reading the committed file (torch-free)


def read_frontier(path: Path = FRONTIER_CSV) -> list[Row]:
    """The file's rows, parsed once per version of it (the pages read it on every request and every done message)."""
    return list(_parsed(path, path.stat().st_mtime_ns))


@lru_cache(maxsize=8)
def _parsed(path: Path, _mtime_ns: int) -> tuple[Row, ...]:
    types = {f.name: f.type for f in fields(Row)}
    casts = {"int": int, "float": float, "str": str}
    with path.open(newline="") as f:
        return tuple(Row(**{k: casts[str(types[k])](v) for k, v in record.items()}) for record in csv.DictReader(f))


def twin_row(rows: Sequence[Row]) -> Row:
    return next(r for r in rows if r.model == "ar")


def race_rows(rows: Sequence[Row]) -> dict[int, Row]:
    """The plain diffusion rows by steps (64 tokens): what the race's steps menu offers."""
    return {r.steps: r for r in rows if r.plain_diffusion}


def default_race_steps(rows: Sequence[Row]) -> int:
    """The fewest diffusion steps whose judge perplexity is within `WITHIN_TWIN` of the twin's; if none is, the
    steps with the best judge perplexity."""
    twin, plain = twin_row(rows), race_rows(rows)
    within = [steps for steps, r in plain.items() if r.judge_ppl <= WITHIN_TWIN * twin.judge_ppl]
    if within:
        return min(within)
    return min(plain.values(), key=lambda r: r.judge_ppl).steps


def race_default_steps(path: Path = FRONTIER_CSV) -> int:
    """`default_race_steps` of the committed file; without one, one token a pass (the setting that never
    flatters diffusion's text)."""
    if not path.exists():
        return LENGTH
    return default_race_steps(read_frontier(path))


# ---------------------------------------------------------------------------------------------------------
# Measuring (needs torch and the models)


def word_bigrams(texts: Sequence[str]) -> float:
    from models.text.judge import words_of

    pairs = [tuple(w[i : i + 2]) for w in map(words_of, texts) for i in range(len(w) - 1)]
    return len(set(pairs)) / max(1, len(pairs))


@dataclass(frozen=True)
class Drawn:
    """One sample of a setting, before judging: what `measure` needs of it (kept in the draws file)."""

    setting: str
    prompt: str
    seed: int
    segments: list[tuple[str, bool]]  # (text, generated), decoded by the model that wrote it
    passes: int
    generated: int
    ms: float
    in_order: float


def draw(setting: Setting, model: TextModel, prompt: str, seed: int) -> Drawn:
    from models.text.decisions import DecisionLog
    from models.text.decoding import TextRequest
    from models.text.judge import segments_of
    from models.text.sample import sample_autoregressive, sample_diffusion

    request = TextRequest(
        prompt=prompt,
        length=LENGTH,
        steps=setting.steps,
        seed=seed,
        strategy=setting.strategy or "entropy",
        temperature=setting.temperature,
        block_length=setting.block_length,
        remask=setting.remask,
    )
    log = DecisionLog()
    started = time.perf_counter()
    if setting.model == "ar":
        frames = sample_autoregressive(model, request)
    else:
        frames = sample_diffusion(model, request, commit_threshold=setting.threshold or None)
    for frame in frames:
        log.record(frame)
    ms = (time.perf_counter() - started) * 1000
    segments = segments_of(frame, model)
    return Drawn(
        setting.name,
        prompt,
        seed,
        [(s.text, s.generated) for s in segments],
        frame.forward_passes,
        frame.generated,
        round(ms, 2),
        log.in_order_share(),
    )


def read_draws(path: Path) -> dict[tuple[str, str, int], Drawn]:
    if not path.exists():
        return {}
    draws = [Drawn(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return {(d.setting, d.prompt, d.seed): d for d in draws}


def measure(setting: Setting, draws: Sequence[Drawn], judge: Judge) -> Row:
    from models.text.judge import Segment

    nll = real = words = 0.0
    texts = []
    for d in draws:
        detail = judge.measure([Segment(text, generated) for text, generated in d.segments])
        nll, real, words = nll + detail.nll, real + detail.real, words + detail.words
        texts.append(" ".join(text for text, generated in d.segments if generated))
    times = sorted(d.ms for d in draws)
    return Row(
        name=setting.name,
        model=setting.model,
        steps=setting.steps,
        strategy=setting.strategy,
        block_length=setting.block_length,
        remask=setting.remask,
        threshold=setting.threshold,
        samples=len(draws),
        tokens_per_pass=round(sum(d.generated for d in draws) / sum(d.passes for d in draws), 3),
        judge_ppl=round(math.exp(nll / max(1.0, words)), 2),
        real_words=round(real / max(1.0, words), 4),
        distinct2=round(word_bigrams(texts), 4),
        ms_per_sample=round(times[len(times) // 2], 1),
        in_order=round(sum(d.in_order for d in draws) / len(draws), 4),
    )


def write_frontier(rows: Sequence[Row], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f.name for f in fields(Row)])
        for row in rows:
            writer.writerow([getattr(row, f.name) for f in fields(Row)])


def main(argv: list[str] | None = None) -> None:
    import torch

    from models.checkpoints import CHECKPOINT_ROOT
    from models.text.evaluate import PROMPTS
    from models.text.judge import load_judge
    from models.text.model import load_text_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=FRONTIER_CSV)
    p.add_argument("--draws", type=Path, required=True, help="JSON lines of drawn samples: reused, extended (resumable)")
    p.add_argument("--draw-only", action="store_true", help="draw the samples, judge nothing (the judge may not exist yet)")
    p.add_argument("--diffusion", type=Path, default=CHECKPOINT_ROOT / "text-diffusion")
    p.add_argument("--ar", type=Path, default=CHECKPOINT_ROOT / "text-ar")
    p.add_argument("--judge", type=Path, default=CHECKPOINT_ROOT / "text-judge")
    p.add_argument("--seeds", type=int, default=16, help="samples per prompt (8 prompts; 16: 128 samples a row)")
    p.add_argument("--only", action="append", default=[], help="measure only the settings with this name (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--retime",
        type=int,
        default=0,
        help="time this many fresh samples a setting for ms_per_sample (their median) instead of the draws' own times: "
        "run it on an otherwise idle machine, the draws may have shared it",
    )
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    torch.set_num_threads(args.threads)
    diffusion, twin = load_text_model(args.diffusion), load_text_model(args.ar)
    settings = [s for s in SETTINGS if not args.only or s.name in args.only]
    draws = read_draws(args.draws)
    with args.draws.open("a") as out:
        for setting in tqdm(settings, desc="settings"):
            model = twin if setting.model == "ar" else diffusion
            for prompt in PROMPTS:
                for seed in range(args.seeds):
                    if (setting.name, prompt, seed) not in draws:
                        drawn = draw(setting, model, prompt, seed)
                        draws[(setting.name, prompt, seed)] = drawn
                        out.write(json.dumps(asdict(drawn)) + "\n")
                        out.flush()
    if args.draw_only:
        return
    judge = load_judge(args.judge)
    rows = []
    for setting in settings:
        mine = [draws[(setting.name, prompt, seed)] for prompt in PROMPTS for seed in range(args.seeds)]
        row = measure(setting, mine, judge)
        if args.retime:
            model = twin if setting.model == "ar" else diffusion
            times = sorted(draw(setting, model, PROMPTS[i % len(PROMPTS)], i // len(PROMPTS)).ms for i in range(args.retime))
            row = replace(row, ms_per_sample=round(times[len(times) // 2], 1))
        rows.append(row)
        print(rows[-1], flush=True)
    write_frontier(rows, args.out)
    plain = any(r.plain_diffusion for r in rows) and any(r.model == "ar" for r in rows)
    print(f"wrote {args.out}" + (f"; the race's default steps: {default_race_steps(rows)}" if plain else ""))


if __name__ == "__main__":
    main()
