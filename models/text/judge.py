"""The judge: an autoregressive model trained apart from both text models, scoring what they write.

Speed means nothing without what was written, so every finished text run and each race lane is scored here:
- `judge_ppl`: the judge's perplexity per word of the generated text, given the text around it (the prompt, or
  an infill's fixed text on both sides before it). It reads decoded *text*, re-tokenised with the judge's own
  tokenizer, and divides by words (`words_of`), not tokens, so it can judge a model with any tokenizer.
- `real_words`: the share of generated words that occur in the judge's training text (`words.json`).

The judge is a larger network than the twin (8 layers against 6), trained on the same stories with its own
seed and chosen on held-out text (its card says so); it never shares weights with the twin it judges.
Its cost is one forward pass over the finished text per judged run.

    python -m models.text.publish --run runs/text_judge --name text-judge
    python -m models.text.judge publish --data train.txt   # words.json, the card's judge section, manifest
    python -m models.text.judge score "Once upon a time" ", there was a dog."
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from models.checkpoints import CHECKPOINT_ROOT, read_json, write_json, write_manifest
from models.frames import FIXED, TextFrame, TextQuality
from models.text.data import read_stories
from models.text.model import TextModel, load_text_model
from models.text.race import RaceFrame

JUDGE_NAME = "text-judge"
WORDS_FILE = "words.json"
END_OF_TEXT = "<|endoftext|>"
# A word: letters, with inner apostrophes ("didn't", "Lily's"); case folded. Curly apostrophes count as straight.
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
EXPLAINED = (
    "Judge perplexity: how surprised an independent, larger model trained on the same stories is by each word "
    "(lower reads better; the twin's own text scores about {twin}). Real words: the share of words that occur in "
    "the training stories."
)


def words_of(text: str) -> list[str]:
    """The words of `text` as the real-word share counts them (an end-of-text mark is not a word)."""
    return WORD.findall(text.replace(END_OF_TEXT, " ").replace("\u2019", "'").lower())


def vocabulary(stories: Iterable[str]) -> list[str]:
    return sorted({word for story in stories for word in words_of(story)})


@dataclass(frozen=True)
class Segment:
    text: str
    generated: bool  # written by the model under judgement (scored) or given to it (context only)


@dataclass(frozen=True)
class JudgeDetail:
    nll: float  # summed over the scored tokens, nats
    words: int  # the generated words (`words_of`: punctuation and end marks are not words)
    real: int  # of those, in the training text

    @property
    def counted(self) -> int:
        """The words the perplexity divides by: the same words the real-word share counts."""
        return self.words

    def quality(self, judge: str) -> TextQuality:
        ppl = math.exp(self.nll / self.counted) if self.counted else None
        return TextQuality(
            judge_ppl=round(ppl, 2) if ppl is not None else None,
            real_words=round(self.real / self.words, 4) if self.words else None,
            words=self.words,
            judge=judge,
        )


class Judge:
    """Loaded from a checkpoint folder with `words.json` beside the weights (all in its sha256 manifest)."""

    def __init__(self, model: TextModel, words: frozenset[str]) -> None:
        if not model.causal:
            raise ValueError("the judge must be an autoregressive (causal) model")
        self.model = model
        self.words = words
        self.name = model.name

    def score(self, segments: Sequence[Segment]) -> TextQuality:
        """Judge perplexity per word and real-word share of the generated segments, reading the others as context."""
        return self.measure(segments).quality(self.name)

    @torch.inference_mode()
    def measure(self, segments: Sequence[Segment]) -> JudgeDetail:
        """The sums behind `score` (pooled over many texts by `models.text.frontier`).

        The whole text is tokenised at once; a judge token whose first character lies in a generated segment is
        scored. Text longer than the judge's context is read in windows that overlap by half."""
        text = "".join(s.text for s in segments)
        spans, start = [], 0
        for s in segments:
            if s.generated:
                spans.append((start, start + len(s.text)))
            start += len(s.text)
        generated_text = " ".join(s.text for s in segments if s.generated)
        words = words_of(generated_text)
        encoding = self.model.tokenizer.encode(text)
        ids, offsets = encoding.ids, encoding.offsets
        scored = [any(a <= offsets[i][0] < b for a, b in spans) for i in range(len(ids))]
        return JudgeDetail(
            nll=self._nll(ids, scored),
            words=len(words),
            real=sum(w in self.words for w in words),
        )

    def _nll(self, ids: list[int], scored: list[bool]) -> float:
        """Summed NLL (nats) of the scored tokens; the first token has no left context and is never scored."""
        context = self.model.context
        total, position = 0.0, 1
        while position < len(ids):
            end = min(len(ids), position + context // 2) if len(ids) > context else len(ids)
            first = max(0, end - context)
            window = torch.tensor([ids[first:end]])
            logits = self.model.network(window[:, :-1])[0]  # row j predicts window[j + 1]
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            for index in range(position, end):
                if scored[index]:
                    total -= float(log_probs[index - first - 1, ids[index]])
            position = end
        return total


def segments_of(frame: TextFrame, model: TextModel) -> list[Segment]:
    """A finished frame of `model` as runs of given and generated text, each run decoded at once from its token ids
    (as `models.text.sample.final_text` decodes, so a multi-byte character split across pieces comes out whole)."""
    runs: list[tuple[bool, list[int]]] = []
    for token in frame.tokens:
        if token.token_id is None:
            raise ValueError("a frame with blanks left cannot be judged")
        generated = token.state != FIXED
        if runs and runs[-1][0] == generated:
            runs[-1][1].append(token.token_id)
        else:
            runs.append((generated, [token.token_id]))
    return [Segment(model.tokenizer.decode(ids, skip_special_tokens=False), generated) for generated, ids in runs]


def judge_frame(judge: Judge, model: TextModel, frame: TextFrame) -> TextQuality:
    """The judge's figures for a finished frame written by `model` (its tokenizer decodes the frame)."""
    return judge.score(segments_of(frame, model))


def judged(
    frames: Iterator[TextFrame], judge: Judge, model: TextModel, baseline: Callable[[], TextFrame] | None = None
) -> Iterator[TextFrame]:
    """`frames` as they come, the finished last one with the judge's figures (and, where `baseline` draws a
    comparison run, that run's figures as `baseline`): one judge pass per finished run (two with a baseline)."""
    for frame in frames:
        if frame.step >= frame.total and frame.masked == 0:
            before = judge_frame(judge, model, baseline()) if baseline is not None else None
            frame = replace(frame, quality=judge_frame(judge, model, frame), baseline=before)
        yield frame


def judged_race(races: Iterator[RaceFrame], judge: Judge, models: dict[str, TextModel]) -> Iterator[RaceFrame]:
    """The race's frames as they come; at the last tick every lane's frame carries the judge's figures (judged
    after the lanes' timed steps, so the judge's pass is in no lane's wall time)."""
    for race in races:
        if race.step >= race.total:
            lanes = tuple(
                replace(lane, frame=replace(lane.frame, quality=judge_frame(judge, models[lane.name], lane.frame)))
                if lane.frame.masked == 0
                else lane
                for lane in race.lanes
            )
            race = replace(race, lanes=lanes)
        yield race


def load_judge(folder: Path = CHECKPOINT_ROOT / JUDGE_NAME) -> Judge:
    """Verified like every checkpoint (`load_text_model` checks the manifest, which lists `words.json`)."""
    model = load_text_model(folder)
    words = read_json(folder / WORDS_FILE)["words"]
    return Judge(model, frozenset(words))


def write_words(data: Path, out: Path) -> int:
    """`words.json`: the training text's distinct words; the manifest is rewritten to include it."""
    words = vocabulary(read_stories(data))
    write_json(out / WORDS_FILE, {"source": data.name, "words": words})
    write_manifest(out)
    return len(words)


JUDGE_HEADING = "## As the judge"


def judge_section(judge: Judge, twin: TextModel, valid: Path) -> str:
    """The card's judge section: held-out NLL beside the twin's (same windows), and the measured cost of a run."""
    from models.text.data import encode_stream, fixed_windows
    from models.text.evaluate import heldout_nll

    windows = fixed_windows(encode_stream(judge.model.tokenizer, read_stories(valid)), judge.model.context)
    judge_nll, twin_nll = heldout_nll(judge.model.network, windows), heldout_nll(twin.network, windows)
    sample = [Segment("Once upon a time", False), Segment(", there was a little girl named Lily. " * 4, True)]
    times = []
    for _ in range(21):
        started = time.perf_counter()
        judge.score(sample)
        times.append((time.perf_counter() - started) * 1000)
    params = judge.model.network.parameter_count()
    return "\n".join(
        [
            JUDGE_HEADING,
            "",
            "This model scores what the product's two text models write (`models.text.judge`): the perplexity per word "
            "of the decoded text given its prompt, and the share of real words (words of the training text, "
            f"`{WORDS_FILE}`, {len(judge.words):,} words). It is trained apart from both: its own seed, "
            f"{judge.model.network.config.depth} layers against the twin's {twin.network.config.depth} "
            f"({params:,} parameters against {twin.network.parameter_count():,}), the same stories and tokenizer, "
            "chosen on held-out text.",
            "",
            f"- held-out NLL on {len(windows)} windows ({windows.numel():,} tokens) of the shipped validation excerpt: "
            f"**{judge_nll:.4f}** nats/token; the twin on the same windows: {twin_nll:.4f}",
            f"- cost: one forward pass over the finished text per judged run; median {sorted(times)[10]:.1f} ms for a "
            "64-token sample with its prompt (one thread of this CPU, 21 runs)",
        ]
    )


def publish(data: Path, out: Path, twin_folder: Path, valid: Path) -> None:
    """Make a published AR checkpoint (`models.text.publish`) the judge: words, card section, manifest."""
    count = write_words(data, out)
    judge = load_judge(out)
    card = out / "MODEL_CARD.md"
    kept = card.read_text().split(JUDGE_HEADING)[0].rstrip()
    card.write_text(kept + "\n\n" + judge_section(judge, load_text_model(twin_folder), valid) + "\n")
    write_manifest(out)
    print(f"{count} words written to {out / WORDS_FILE}; card section written")


def main(argv: list[str] | None = None) -> None:
    from models.text.evaluate import HELDOUT_TEXT

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("publish", help="make a published AR checkpoint the judge: words.json, card section, manifest")
    w.add_argument("--data", type=Path, required=True, help="the judge's training text")
    w.add_argument("--out", type=Path, default=CHECKPOINT_ROOT / JUDGE_NAME)
    w.add_argument("--twin", type=Path, default=CHECKPOINT_ROOT / "text-ar")
    w.add_argument("--valid", type=Path, default=HELDOUT_TEXT, help="held-out text (never the training text)")
    s = sub.add_parser("score", help="score a continuation given its prompt; prints one JSON object")
    s.add_argument("prompt")
    s.add_argument("text")
    s.add_argument("--judge", type=Path, default=CHECKPOINT_ROOT / JUDGE_NAME)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # as the server's workers run it (and the card's cost line says)
    if args.command == "publish":
        publish(args.data, args.out, args.twin, args.valid)
        return
    quality = load_judge(args.judge).score([Segment(args.prompt, False), Segment(args.text, True)])
    print(json.dumps(quality.as_json()))


if __name__ == "__main__":
    main()
