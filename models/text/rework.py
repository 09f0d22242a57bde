"""Change a word and rework the text around it: what a left-to-right model cannot do, a diffusion model can.

A rework is a base run (the request without its edit: `TextRequest.base`) plus one edit: the base's generated word
`edit_at` (0: the first word the model wrote) becomes `edit_word`, and the `redo` region is blanked and written again:
    window  `window` words on each side of it
    after   everything after it (what a left-to-right model has to redo)
    all     every generated word but the new one
Everything else keeps its exact text. The new canvas is an ordinary infill prompt (`models.text.decoding`): the kept
text as fixed pieces, each redone run as a sized gap `___{n}` of as many blanks as the old run had tokens, and the new
word fixed between them. It takes as many steps per blank as the base run did, so it writes as many tokens a pass.

In the race, the autoregressive twin keeps the text before the word, reads the new word, and writes as many tokens
as followed it: it cannot change what came before, and cannot keep what came after.

A word is a run of generated tokens drawn joined (no leading space, as the page draws them), with punctuation apart
("young" and "." are two words); whitespace-only tokens (a line break) belong to the word after them. Everything
here is torch-free: the samplers, the tokenizer's decode and count come in as functions, so the fakes rework
through the same code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from difflib import SequenceMatcher

from models.frames import CHANGED, EDITED, FIXED, SAME, MarkedWord, Rework, TextFrame, TextQuality, TextToken
from models.requests import SamplingError
from models.text.decoding import INFILL_MARK, TextRequest, tokens_needed
from models.text.race import AUTOREGRESSIVE, DIFFUSION, LaneSpec, RaceFrame, race_frames
from models.text.tokenizer import END_OF_STORY

Sampler = Callable[[TextRequest, Callable[[], bool] | None], Iterator[TextFrame]]
Decode = Callable[[list[TextToken]], str]  # decided tokens -> their text (the tokenizer decodes their ids)
Count = Callable[[str], int]
# The judge over (given text, written text): every text of a rework is judged over the same span, everything after
# the base's prompt, so "before" and "after" compare like with like (a rework's fixed kept words are scored too).
JudgeText = Callable[[str, str], TextQuality]


def edit_problem(request: TextRequest) -> tuple[str, str] | None:
    """(field, message) when the edit fields do not make one edit, else None. Kept out of validation so a page's
    query string can set the fields one by one (as `models.image.request.lab_problem`)."""
    word = request.edit_word.strip()
    if request.edit_at is None:
        if word:
            return "edit_at", "edit_word needs edit_at: the number of the word it replaces (0: the first word written)"
        return None
    if not word:
        return "edit_word", f"edit_word is empty: type the word that replaces word {request.edit_at}"
    if INFILL_MARK in word:
        return "edit_word", f"edit_word cannot hold {INFILL_MARK!r}, the infill mark"
    if any(char in word for char in "\n\r\t"):
        return "edit_word", "edit_word is one line: no line breaks or tabs"
    return None


def _special(text: str) -> bool:
    return text == END_OF_STORY  # a word of its own: the next story starts after it


def _wordy(text: str) -> bool:
    return any(char.isalnum() for char in text)


def generated_words(tokens: tuple[TextToken, ...]) -> list[range]:
    """Each generated word of a finished canvas as its range of positions (leading whitespace-only tokens
    included), in reading order. Fixed text ends a word; a word never spans fixed text."""
    words: list[range] = []
    pending: int | None = None  # the first of the whitespace-only tokens waiting for the word after them
    open_word = False
    for position, token in enumerate(tokens):
        text = token.text
        if token.state == FIXED:
            pending, open_word = None, False
            continue
        if not text.strip():
            if pending is None:
                pending = position
            open_word = False
            continue
        before = tokens[position - 1].text
        joined = (
            open_word
            and not text[:1].isspace()
            and not _special(text)
            and not _special(before)
            and _wordy(text) == _wordy(before)  # "young" + "." are two words; "don" + "'t" one
        )
        if joined:
            words[-1] = range(words[-1].start, position + 1)
        else:
            words.append(range(pending if pending is not None else position, position + 1))
        pending, open_word = None, True
    return words


@dataclass(frozen=True)
class _Where:
    """Where the new word sits in a lane's canvas: in fixed piece `piece` (of the pieces that hold text), at
    character `offset`."""

    piece: int
    offset: int


@dataclass(frozen=True)
class ReworkPlan:
    request: TextRequest  # the diffusion lane's canvas: an infill prompt, no edit fields
    ar_request: TextRequest  # the twin's: the text before the word and the word; as many tokens as followed it
    old_before: str  # the base's text before the word (prompt included), the word and after it
    old_word: str
    old_after: str
    new_text: str  # the new word as it sits in the text (with the old word's leading whitespace)
    where: _Where  # the new word in `request`'s canvas
    ar_where: _Where
    given: str  # the base's prompt (its leading fixed text): what the judge reads as context, never scores
    at: int  # the edited word's number among the base's generated words
    base_words: tuple[str, ...]
    base_passes: int
    redo: str  # the region as asked (the comparison's labels)
    window: int


def _steps_for(blanks: int, base: TextFrame) -> int:
    """As many steps per blank as the base run took, so a rework writes as many tokens a pass."""
    return max(1, math.ceil(blanks * base.total / max(1, base.generated)))


def plan_rework(base: TextFrame, request: TextRequest, decode: Decode, count: Count, context: int) -> ReworkPlan:
    """The canvases a rework of the finished `base` frame runs on (`SamplingError` names the field at fault)."""
    problem = edit_problem(request)
    if problem:
        raise SamplingError(problem[1])
    assert request.edit_at is not None
    tokens = base.tokens
    if any(t.token_id is None for t in tokens):
        raise SamplingError("a rework starts from a finished run")
    words = generated_words(tokens)
    at = request.edit_at
    if at >= len(words):
        raise SamplingError(f"edit_at is {at}, but the run wrote {len(words)} words: pick 0 to {len(words) - 1}")
    word = words[at]
    generated = [p for p, t in enumerate(tokens) if t.state != FIXED]
    if request.redo == "window":
        low, high = words[max(0, at - request.window)].start, words[min(len(words) - 1, at + request.window)].stop
        redo = {p for p in generated if low <= p < high}
    elif request.redo == "after":
        redo = {p for p in generated if p >= word.stop}
    else:
        redo = set(generated)
    redo -= set(word)

    def text_of(positions: range | list[int]) -> str:
        return decode([tokens[p] for p in positions])

    old_word = text_of(word)
    leading = old_word[: len(old_word) - len(old_word.lstrip())]
    new_text = leading + request.edit_word.strip()
    # The template: kept text (decoded a run at a time), gaps for redone runs, the new word where the old one was.
    # Text next to text is one piece, so `parts` alternates text and gaps and the text parts are the canvas's
    # fixed runs, in order.
    parts: list[str | int] = []  # text, or a gap's blanks
    kept: list[int] = []

    def add(part: str | int) -> None:
        if parts and type(parts[-1]) is type(part):
            parts[-1] += part  # type: ignore[operator]  # str + str or int + int
        else:
            parts.append(part)

    def flush() -> None:
        if kept:
            add(text_of(kept))
            kept.clear()

    where: _Where | None = None
    for position in range(len(tokens)):
        if position == word.start:
            flush()
            texts = sum(isinstance(part, str) for part in parts)
            tail = parts[-1] if parts and isinstance(parts[-1], str) else None  # the word goes on the text before it
            where = _Where(texts - 1, len(tail)) if tail is not None else _Where(texts, 0)
            add(new_text)
        elif position in word:
            continue
        elif position in redo:
            flush()
            add(1)
        else:
            kept.append(position)
    flush()
    assert where is not None
    if any(INFILL_MARK in part for part in parts if isinstance(part, str)):
        raise SamplingError(f"the text holds {INFILL_MARK!r}, the infill mark: it cannot be reworked")
    template = "".join(part if isinstance(part, str) else f"{INFILL_MARK}{{{part}}}" for part in parts)
    blanks = sum(part for part in parts if isinstance(part, int))
    if not blanks:
        raise SamplingError(f"redo={request.redo} leaves nothing to write again around word {at}: pick a wider region")
    plain = request.base()  # the edit fields back to their defaults: both lanes' requests are ordinary runs
    rework = plain.model_copy(update={"prompt": template, "steps": _steps_for(blanks, base)})
    needed = tokens_needed(rework, count)
    if needed > context:
        raise SamplingError(
            f"edit_word makes the text {needed} tokens, over the model's context of {context}: use a shorter word"
        )
    prompt_end = next((p for p, t in enumerate(tokens) if t.state != FIXED), len(tokens))
    old_before, old_after = text_of(range(word.start)), text_of(range(word.stop, len(tokens)))
    ar_length = len(tokens) - word.stop
    return ReworkPlan(
        request=rework,
        ar_request=plain.model_copy(update={"prompt": old_before + new_text, "length": max(1, ar_length)}),
        old_before=old_before,
        old_word=old_word,
        old_after=old_after,
        new_text=new_text,
        where=where,
        ar_where=_Where(0, len(old_before)),
        given=text_of(range(prompt_end)),
        at=at,
        base_words=tuple(text_of(w).strip() for w in words),
        base_passes=base.forward_passes,
        redo=request.redo,
        window=request.window,
    )


def split_lane(frame: TextFrame, decode: Decode, where: _Where, new_text: str) -> tuple[str, str]:
    """A finished lane's text before and after the new word: its fixed runs are the template's non-empty pieces,
    in order, so the word's characters sit at `where.offset` in fixed run `where.piece`."""
    runs: list[tuple[bool, list[TextToken]]] = []
    for token in frame.tokens:
        fixed = token.state == FIXED
        if runs and runs[-1][0] == fixed:
            runs[-1][1].append(token)
        else:
            runs.append((fixed, [token]))
    texts = [(fixed, decode(ids)) for fixed, ids in runs]
    start, fixed_seen = 0, 0
    for fixed, text in texts:
        if fixed:
            if fixed_seen == where.piece:
                start += where.offset
                break
            fixed_seen += 1
        start += len(text)
    full = "".join(text for _, text in texts)
    return full[:start], full[start + len(new_text) :]


def _marked(old: list[str], new: list[str]) -> tuple[list[MarkedWord], list[MarkedWord], int]:
    matcher = SequenceMatcher(a=old, b=new, autojunk=False)
    old_marks, new_marks, changed = [SAME] * len(old), [SAME] * len(new), 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        changed += max(i2 - i1, j2 - j1)
        old_marks[i1:i2] = [CHANGED] * (i2 - i1)
        new_marks[j1:j2] = [CHANGED] * (j2 - j1)
    return (
        [MarkedWord(w, m) for w, m in zip(old, old_marks)],
        [MarkedWord(w, m) for w, m in zip(new, new_marks)],
        changed,
    )


def compare(plan: ReworkPlan, new_before: str, new_after: str, base_quality: TextQuality | None) -> Rework:
    """The rework against its base, word by word on each side of the edited word."""
    old_b, new_b, changed_before = _marked(plan.old_before.split(), new_before.split())
    old_a, new_a, changed_after = _marked(plan.old_after.split(), new_after.split())
    old_word, new_word = plan.old_word.strip(), plan.new_text.strip()
    return Rework(
        old=(*old_b, MarkedWord(old_word, EDITED), *old_a),
        new=(*new_b, MarkedWord(new_word, EDITED), *new_a),
        changed_before=changed_before,
        changed_after=changed_after,
        at=plan.at,
        old_word=old_word,
        new_word=new_word,
        base_words=plan.base_words,
        redo=plan.redo,
        window=plan.window,
        base_passes=plan.base_passes,
        base_quality=base_quality,
    )


def _judged(judge: JudgeText | None, given: str, before: str, word: str, after: str) -> TextQuality | None:
    if judge is None:
        return None
    full = before + word + after
    return judge(given, full[len(given) :]) if full.startswith(given) else judge("", full)


def _finished(frames: Iterator[TextFrame]) -> TextFrame | None:
    last = None
    for frame in frames:
        last = frame
    return last if last is not None and last.step >= last.total and last.masked == 0 else None


@dataclass(frozen=True)
class _Started:
    """What both entry points start from: the plan over the base run, the base's judged figures, and how to read a
    lane's finished frame."""

    plan: ReworkPlan
    decode: Decode
    judge: JudgeText | None
    base_quality: TextQuality | None

    def finish(self, frame: TextFrame, where: _Where) -> TextFrame:
        """A lane's finished frame with its comparison and, with a judge, its figures over the base's span."""
        plan = self.plan
        before, after = split_lane(frame, self.decode, where, plan.new_text)
        quality = _judged(self.judge, plan.given, before, plan.new_text, after)
        return replace(frame, rework=compare(plan, before, after, self.base_quality), quality=quality)


def _start(
    sample: Sampler,
    decode: Decode,
    count: Count,
    context: int,
    request: TextRequest,
    should_stop: Callable[[], bool] | None,
    judge: JudgeText | None,
) -> _Started | None:
    """The base run (not streamed) and the plan over it; None when asked to stop first."""
    base = _finished(sample(request.base(), should_stop))
    if base is None:
        return None
    plan = plan_rework(base, request, decode, count, context)
    return _Started(plan, decode, judge, _judged(judge, plan.given, plan.old_before, plan.old_word, plan.old_after))


def rework_frames(
    sample: Sampler,
    decode: Decode,
    count: Count,
    context: int,
    request: TextRequest,
    should_stop: Callable[[], bool] | None = None,
    judge: JudgeText | None = None,
) -> Iterator[TextFrame]:
    """The base run (not streamed), then the rework's frames; its last frame carries the comparison and, with a
    judge, the judge's figures over everything after the prompt (the base's over the same span)."""
    started = _start(sample, decode, count, context, request, should_stop, judge)
    if started is None:
        return
    for frame in sample(started.plan.request, should_stop):
        yield started.finish(frame, started.plan.where) if frame.step >= frame.total and frame.masked == 0 else frame


def rework_race(
    diffusion: Sampler,
    autoregressive: Sampler,
    decode: Decode,
    count: Count,
    context: int,
    request: TextRequest,
    should_stop: Callable[[], bool] | None = None,
    judge: JudgeText | None = None,
) -> Iterator[RaceFrame]:
    """The same edit in both lanes, from the diffusion model's base run: the diffusion lane reworks the region with
    both sides in view; the twin keeps what came before, reads the new word and writes everything after it."""
    if INFILL_MARK in request.prompt:
        raise SamplingError("a reworked race starts from a run without gaps: take the '___' out of the prompt")
    started = _start(diffusion, decode, count, context, request, should_stop, judge)
    if started is None:
        return
    plan = started.plan
    specs = [
        LaneSpec(DIFFUSION, diffusion(plan.request, should_stop)),
        LaneSpec(AUTOREGRESSIVE, autoregressive(plan.ar_request, should_stop)),
    ]
    places = {DIFFUSION: plan.where, AUTOREGRESSIVE: plan.ar_where}
    for race in race_frames(specs, should_stop):
        if race.step >= race.total:
            lanes = tuple(
                replace(lane, frame=started.finish(lane.frame, places[lane.name])) if lane.frame.masked == 0 else lane
                for lane in race.lanes
            )
            race = replace(race, lanes=lanes)
        yield race
