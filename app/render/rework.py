"""The rework's views (`models.text.rework`): the edit form under a finished text run or race, and what a rework
did: the text before and after, every changed word marked, and the figures (words changed on each side of the edit,
the judge's reading of both texts, passes and time against the run it started from).

Python decides everything here (which words there are, which changed, what each sentence says); the templates
(`templates/rework.html`) only render, and the inspector only fills the form's fields (static/inspector.js).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from app.render.quality import figures
from app.web.query import to_query
from models.frames import Rework, TextFrame, TextQuality
from models.text.decoding import EDIT_FIELDS, EDIT_WINDOW_MAX, EDIT_WORD_CHARS_MAX, REDO_REGIONS, TextRequest
from models.text.rework import generated_words

REDO_LABELS = {
    "window": "the words around it",
    "after": "everything after it (what the twin must redo)",
    "all": "everything but the prompt",
}
LABEL_CHARS = 24  # a word's option label, cut past this


def _shown(word: str) -> str:
    word = " ".join(word.split()) or "\u2423"
    return word if len(word) <= LABEL_CHARS else word[: LABEL_CHARS - 1] + "\u2026"


def region_phrase(redo: str, window: int) -> str:
    """What a rework writes again, as the page and the done message both say it."""
    if redo == "window":
        return f"{window} word{'s' if window != 1 else ''} on each side written again"
    return "everything after it written again" if redo == "after" else "everything but the prompt written again"


def edit_form(request: TextRequest, frame: TextFrame) -> SimpleNamespace | None:
    """The form under a finished run that reworks its base run: the base's fields as hidden inputs, the word to
    change (with its canvas positions, for the inspector, when the frame shown is the base itself), the new word
    and the region. A rework's own frame is not its base: its words come from the comparison, without positions."""
    base = request.base()
    words: list[tuple[int, str, tuple[int, int] | None]]
    if frame.rework is not None:
        words = [(index, word, None) for index, word in enumerate(frame.rework.base_words)]
    elif frame.masked == 0:
        tokens = frame.tokens
        words = [
            (index, "".join(tokens[p].text for p in span).strip(), (span.start, span.stop))
            for index, span in enumerate(generated_words(tokens))
        ]
    else:
        return None
    if not words:
        return None
    selected = request.edit_at if request.edit_at is not None and request.edit_at < len(words) else 0
    return SimpleNamespace(
        hidden=[(name, value) for name, value in to_query(base).items() if name not in EDIT_FIELDS],
        words=[
            SimpleNamespace(
                index=index,
                label=f"{index}: {_shown(word)}",
                word=word,
                first=span[0] if span else None,
                last=span[1] if span else None,
                selected=index == selected,
            )
            for index, word, span in words
        ],
        edit_word=request.edit_word,
        redo=[(value, REDO_LABELS[value], value == request.redo) for value in REDO_REGIONS],
        window=request.window,
        window_max=EDIT_WINDOW_MAX,
        word_max=EDIT_WORD_CHARS_MAX,
        of_rework=frame.rework is not None,
    )


def _quality_line(rework: Rework, after: TextQuality | None) -> str:
    before = rework.base_quality
    if before is None or after is None or before.judge_ppl is None or after.judge_ppl is None:
        return ""
    return f"Judge: before, {figures(before)}; after, {figures(after)}."


def _changed_line(rework: Rework) -> str:
    return (
        f"Words changed: {rework.changed_before} before the edit (of {rework.words_before} written there), "
        f"{rework.changed_after} after it (of {rework.words_after})."
    )


def _marked(words: Any) -> list[SimpleNamespace]:
    return [SimpleNamespace(text=w.text, mark=w.mark) for w in words]


def before_after(frame: TextFrame, ms_total: float) -> SimpleNamespace | None:
    """The text page's comparison of a finished rework with the run it started from."""
    rework = frame.rework
    if rework is None:
        return None
    cost = (
        f"Cost: {frame.forward_passes} passes, {ms_total / 1000:.2f} s, for the rework; the run it started from took "
        f"{rework.base_passes} passes (computed again first, not streamed)."
    )
    return SimpleNamespace(
        title=f"Word {rework.at} changed: \u201c{rework.old_word}\u201d \u2192 \u201c{rework.new_word}\u201d, "
        f"{region_phrase(rework.redo, rework.window)}",
        lines=[line for line in (_changed_line(rework), _quality_line(rework, frame.quality), cost) if line],
        old=_marked(rework.old),
        new=_marked(rework.new),
        lanes=[],
    )


def race_before_after(lanes: list[tuple[str, TextFrame, float]]) -> SimpleNamespace | None:
    """The race's comparison: per lane, words changed on each side of the edit, passes and time, and its text."""
    reworks = [(title, frame, ms, frame.rework) for title, frame, ms in lanes if frame.rework is not None]
    if not reworks:
        return None
    first = reworks[0][3]
    assert first is not None
    rows = []
    for title, frame, ms, rework in reworks:
        assert rework is not None
        rows.append(
            SimpleNamespace(
                title=title,
                before=f"{rework.changed_before} of {rework.words_before}",
                after=f"{rework.changed_after} of {rework.words_after}",
                passes=frame.forward_passes,
                seconds=f"{ms / 1000:.2f}",
                judge=figures(frame.quality) if frame.quality else "not judged",
                new=_marked(rework.new),
            )
        )
    base = first.base_quality
    return SimpleNamespace(
        title=f"Word {first.at} changed: \u201c{first.old_word}\u201d \u2192 \u201c{first.new_word}\u201d; the diffusion "
        f"lane: {region_phrase(first.redo, first.window)}; the twin: everything after it",
        lines=[f"The text it started from, judged: {figures(base)}." if base else ""],
        old=_marked(first.old),
        new=[],
        lanes=rows,
    )


def rework_json(rework: Rework | None) -> dict[str, Any] | None:
    if rework is None:
        return None
    return {
        "at": rework.at,
        "old_word": rework.old_word,
        "new_word": rework.new_word,
        "redo": rework.redo,
        "window": rework.window,
        "changed_before": rework.changed_before,
        "changed_after": rework.changed_after,
        "words_before": rework.words_before,
        "words_after": rework.words_after,
        "base_passes": rework.base_passes,
        "base_quality": rework.base_quality.as_json() if rework.base_quality else None,
    }
