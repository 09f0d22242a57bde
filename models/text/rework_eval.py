"""The rework preset, measured: does a changed word carry into the text around it, and at what cost?

    python -m models.text.rework_eval --seeds 24 --out docs/rework-eval.json

The preset is the seed's example on the page: "... Lily. She was very" and the first generated word (her mood)
changed to "sad". For each seed the diffusion model writes its base run, then the reworked race runs on it: the
diffusion lane writes `WINDOW` words on each side of the new word again, reading both sides; the autoregressive
twin keeps the text before the word and writes everything after it. Per lane it records the words changed on
each side (a replaced run counts its longer side, so the twin's count can pass the words there were), forward
passes, the lane's own wall time, and held-out quality as the independent judge scores it (`models.text.judge`:
a larger model trained apart from both, so neither lane grades itself): `judge_ppl` over the words the lane
wrote, `judge_ppl_whole` over everything after the prompt (the same span for the base and both lanes).

"Follows the new word": the lane's text after the edited word holds a word of the small `SAD` lexicon. The same
test on the base text after its word 0 says how often the old text already read sad, so "X of N after the
rework, Y of N before" compares like with like. `sad_in_new` counts only words the lane wrote anew (marked
changed), since the diffusion lane keeps the base's words past its window.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, median
from typing import Any

import torch
from tqdm import tqdm

from models.checkpoints import CHECKPOINT_ROOT
from models.frames import CHANGED, EDITED, MarkedWord, TextFrame
from models.text.decoding import RaceRequest, TextRequest
from models.text.judge import Judge, Segment, judged_race, load_judge, words_of
from models.text.model import TextModel, load_text_model
from models.text.race import AUTOREGRESSIVE, DIFFUSION
from models.text.rework import rework_race
from models.text.sample import count_tokens, final_text, sample_autoregressive, sample_diffusion

REDO = "window"
WINDOW = 8
PRESET: dict[str, Any] = {
    "prompt": "Once upon a time, there was a little girl named Lily. She was very",
    "length": 48,
    "steps": 48,
    "edit_at": 0,
    "edit_word": "sad",
}
SAD = frozenset(
    {"sad", "sadly", "cry", "cried", "crying", "tears", "upset", "unhappy", "lonely", "scared", "frown", "frowned"}
    | {"sorry", "miss", "missed", "alone", "hurt"}
)
LANE_FIGURES = (
    *("changed_before", "changed_after", "words_before", "words_after"),
    *("judge_ppl", "judge_ppl_whole", "forward_passes", "wall_ms"),
)


def after_edit(words: tuple[MarkedWord, ...]) -> tuple[MarkedWord, ...]:
    """The words after the edited one."""
    at = next(i for i, word in enumerate(words) if word.mark == EDITED)
    return words[at + 1 :]


def reads_sad(words: tuple[MarkedWord, ...]) -> bool:
    """A word of `SAD` among `words` (lowercased, punctuation stripped: the judge's word rule)."""
    return any(w in SAD for w in words_of(" ".join(word.text for word in words)))


@dataclass(frozen=True)
class Setup:
    diffusion: TextModel
    ar: TextModel
    judge: Judge


def whole_ppl(judge: Judge, model: TextModel, frame: TextFrame) -> float | None:
    """The judge's perplexity of everything after the prompt (the new word included): the same span in the base
    and in both lanes, where a lane's own `judge_ppl` scores only the words it wrote (the diffusion lane's window)."""
    text, prompt = final_text(model, frame), PRESET["prompt"]
    assert text.startswith(prompt), "the prompt does not decode to itself"
    return judge.score([Segment(prompt, False), Segment(text[len(prompt) :], True)]).judge_ppl


def measure_seed(seed: int, setup: Setup) -> dict[str, Any]:
    """One seed's reworked race: the base text's figures and each lane's."""
    dm, am, judge = setup.diffusion, setup.ar, setup.judge
    request = RaceRequest(**PRESET, seed=seed, redo=REDO, window=WINDOW)
    runs: list[list[TextFrame]] = []  # each diffusion run's frames so far: the base run's first

    def diffusion(r: TextRequest, stop: Callable[[], bool] | None) -> Iterator[TextFrame]:
        runs.append([])
        for frame in sample_diffusion(dm, r, should_stop=stop):
            runs[-1][:] = [frame]
            yield frame

    races = rework_race(
        diffusion,
        lambda r, s: sample_autoregressive(am, r, s),
        lambda ts: str(dm.tokenizer.decode([t.token_id for t in ts if t.token_id is not None], skip_special_tokens=False)),
        lambda text: count_tokens(dm, text),
        dm.context,
        request,
        None,
        lambda given, written: judge.score([Segment(given, False), Segment(written, True)]),  # base: the whole text
    )
    # each lane's own words (its `judge_ppl`); `judge_ppl_whole` below scores the same span in every text
    *_, last = judged_race(races, judge, {DIFFUSION: dm, AUTOREGRESSIVE: am})
    row: dict[str, Any] = {"seed": seed}
    for lane in last.lanes:
        rework, quality = lane.frame.rework, lane.frame.quality
        assert rework is not None and quality is not None, f"seed {seed}: lane {lane.name} did not finish"
        after = after_edit(rework.new)
        row[lane.name] = {
            "changed_before": rework.changed_before,
            "changed_after": rework.changed_after,
            "words_before": rework.words_before,
            "words_after": rework.words_after,
            "judge_ppl": quality.judge_ppl,
            "judge_ppl_whole": whole_ppl(judge, dm, lane.frame),
            "forward_passes": lane.frame.forward_passes,
            "wall_ms": round(lane.wall_ms, 1),
            "follows_sad": reads_sad(after),
            "sad_in_new": reads_sad(tuple(w for w in after if w.mark == CHANGED)),
            "text_after": " ".join(w.text for w in after),
        }
    base = last.lanes[0].frame.rework  # the lanes share their base run
    assert base is not None
    row["base"] = {
        "old_word": base.old_word,
        "follows_sad": reads_sad(after_edit(base.old)),
        "judge_ppl": base.base_quality.judge_ppl if base.base_quality else None,
        "judge_ppl_whole": whole_ppl(judge, dm, runs[0][-1]),
        "text_after": " ".join(w.text for w in after_edit(base.old)),
    }
    return row


def summarise(rows: list[dict[str, Any]], lane: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in LANE_FIGURES:
        values = [row[lane][name] for row in rows if row[lane].get(name) is not None]
        out[f"mean_{name}"] = round(mean(values), 3) if values else None
        if name.startswith("judge_ppl"):  # a few runs of nonsense score in the hundreds: the median as well
            out[f"median_{name}"] = round(median(values), 3) if values else None
    out["follows_sad"] = sum(row[lane]["follows_sad"] for row in rows)
    if lane != "base":
        out["sad_in_new"] = sum(row[lane]["sad_in_new"] for row in rows)
    return out


def table(result: dict[str, Any]) -> str:
    """Counts of N; the other figures are means over the seeds."""
    n, b = result["seeds"], result["base"]
    lines = [
        f"Edit word 0 -> {PRESET['edit_word']!r}, redo={REDO}, window={WINDOW}, {n} seeds (counts of {n}, else means)",
        "",
        "| text | follows 'sad' | sad in new words | changed before | changed after | judge ppl (own words) "
        "| judge ppl whole (median) | passes | wall ms |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| base (before) | {b['follows_sad']} | | | | {b['mean_judge_ppl']} "
        f"| {b['mean_judge_ppl_whole']} ({b['median_judge_ppl_whole']}) | | |",
    ]
    for name, s in result["lanes"].items():
        lines.append(
            f"| {name} | {s['follows_sad']} | {s['sad_in_new']} "
            f"| {s['mean_changed_before']} of {s['mean_words_before']} | {s['mean_changed_after']} of {s['mean_words_after']} "
            f"| {s['mean_judge_ppl']} | {s['mean_judge_ppl_whole']} ({s['median_judge_ppl_whole']}) "
            f"| {s['mean_forward_passes']} | {s['mean_wall_ms']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=24, help="seeds 0 .. N-1")
    p.add_argument("--out", type=Path, required=True, help="the JSON written")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    setup = Setup(load_text_model(CHECKPOINT_ROOT / "text-diffusion"), load_text_model(CHECKPOINT_ROOT / "text-ar"), load_judge())
    started = time.perf_counter()
    rows = [measure_seed(seed, setup) for seed in tqdm(range(args.seeds), desc="seeds")]
    result = {
        "preset": RaceRequest(**PRESET, redo=REDO, window=WINDOW).model_dump(exclude={"seed"}),
        "seeds": args.seeds,
        "redo": REDO,
        "window": WINDOW,
        "sad_lexicon": sorted(SAD),
        "lanes": {lane: summarise(rows, lane) for lane in (DIFFUSION, AUTOREGRESSIVE)},
        "base": {
            **{k: v for k, v in summarise(rows, "base").items() if "ppl" in k or k == "follows_sad"},
            "old_word_was_new": sum(row["base"]["old_word"].lower() == PRESET["edit_word"] for row in rows),
        },
        "wall_s": round(time.perf_counter() - started, 1),
        "threads": 1,
        "per_seed": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
