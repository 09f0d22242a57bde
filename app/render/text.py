"""Text frames -> messages: token chips (memoised per run), counters, and the done message with the run's
decision map and changes of mind. Python decides classes, counters and wording; templates render.

Text runs keep a per-run memo (`TextMemo`): a token chip's HTML and a token's JSON depend only on the
token, and from one step to the next most tokens do not change, so each distinct chip is rendered once.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from markupsafe import Markup

from app.render.decision_map import decision_map
from app.render.message import Rendered, dump_json, pack, with_content
from app.render.notices import done_summary
from app.render.quality import explanation, text_summary
from app.render.rework import before_after, edit_form, rework_json
from app.web.templating import stream_macros
from models.frames import BLANK, FIXED, NEW, REMASKED, TextFrame, TextToken
from models.text.decisions import REMASK, DecisionLog
from models.text.decoding import TextRequest
from models.text.tokenizer import END_OF_STORY

CONFIDENCE_BUCKETS = 5


def confidence_class(confidence: float) -> str:
    """Five buckets, low (warm, a wavy line under the word) to high (cool, no line): see theater.css."""
    return f"c{min(CONFIDENCE_BUCKETS - 1, max(0, int(confidence * CONFIDENCE_BUCKETS)))}"


def confidence_legend() -> list[tuple[str, str]]:
    """(class, label) per bucket of `confidence_class`, for the legend over a canvas."""
    width = 100 // CONFIDENCE_BUCKETS
    rows = [(f"c{b}", f"{b * width}-{(b + 1) * width}%") for b in range(CONFIDENCE_BUCKETS)]
    rows[0] = ("c0", f"under {width}%")
    rows[-1] = (f"c{CONFIDENCE_BUCKETS - 1}", f"{100 - width}% or more")
    return rows


def visible(text: str) -> str:
    """A token as a person can read it: newlines as a return sign, other control bytes as <XX>."""
    if text.isprintable():  # the common case: no control (Cc) or surrogate (Cs) characters, no newline
        return text
    out = []
    for char in text:
        if char == "\n":
            out.append("\u23ce")
        elif unicodedata.category(char) in ("Cc", "Cs") and char != "\t":
            out.append(f"<{ord(char):02X}>")
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class TokenView:
    """What the template needs for one chip. Attributes, not a dict: Jinja looks `t.text` up as an attribute
    first, and on a dict that lookup fails with an exception before it tries the key (3x slower per frame)."""

    text: str
    guess: str
    classes: str
    title: str
    was: str  # a blank sent back: the text it had, shown struck through until it is decided again


END_OF_STORY_LABEL = "end of story"
NEW_LINE_MARK = "\u21b5"  # a return arrow: the chip stays (it can be inspected) and the line breaks after it


def is_line_break(text: str) -> bool:
    """A token that ends a line: the end-of-story token, or whitespace holding a newline."""
    return text == END_OF_STORY or ("\n" in text and not text.strip())


def shown_text(text: str) -> str:
    """What a chip draws for a token's text: special tokens and line breaks as what they mean, never raw."""
    if text == END_OF_STORY:
        return END_OF_STORY_LABEL
    if is_line_break(text):
        return NEW_LINE_MARK
    return visible(text).strip() or ("\u2423" if text else "")


def word_joins(pieces: Sequence[tuple[str, str]]) -> list[bool]:
    """Per token, given as (state, text): does it continue the word before it? A decided piece without a leading
    space right after a decided piece does, unless either is a line break; it is then drawn joined to it as one
    visual word (the page's `words_html` and the GIF's chips read the same answer). Chips stay separate
    elements, so the inspector still addresses pieces."""
    joins = []
    for k, (state, text) in enumerate(pieces):
        before_state, before_text = pieces[k - 1] if k else (BLANK, "")
        decided = state not in (BLANK, REMASKED) and before_state not in (BLANK, REMASKED)
        joins.append(
            decided and bool(text) and not text[:1].isspace() and not is_line_break(text) and not is_line_break(before_text)
        )
    return joins


def words_html(chips: Sequence[str], tokens: Sequence[TextToken]) -> Markup:
    """The canvas's chips grouped into words (`span.word`, which never wraps inside), with a line break after
    a newline or an end-of-story token. `chips` are escaped HTML (the `chip` macro), one per token."""
    out: list[str] = []
    open_word = False
    joins = word_joins([(t.state, t.text) for t in tokens])
    for html, token, joined in zip(chips, tokens, joins, strict=True):
        if not joined:
            out.append('</span><span class="word">' if open_word else '<span class="word">')
        out.append(html)
        open_word = True
        if is_line_break(token.text):
            out.append('</span><span class="br" aria-hidden="true"></span>')
            open_word = False
    if open_word:
        out.append("</span>")
    return Markup("".join(out))


def token_view(index: int, token: TextToken) -> TokenView:
    text = token.text
    shown = shown_text(text)
    classes = ["tok"]
    title = ""
    if token.state == FIXED:
        classes.append("fixed")
    elif token.state in (BLANK, REMASKED):
        classes.append("blank")
        if token.state == REMASKED:
            classes.append("remasked")
            title = f"sent back to blank (remasked {token.remask_count}x)"
        else:
            title = f"blank; top guess {shown_text(token.guess)!r}" if token.guess else "blank"
        if token.was:
            title += f"; was {shown_text(token.was)!r}, sent back {token.remask_count}x"
    else:
        classes.append(confidence_class(token.confidence))
        if token.state == NEW:
            classes.append("new")
        if token.remask_count:
            classes.append("redecided")
        alts = ", ".join(f"{shown_text(a.text)!r} {a.probability:.0%}" for a in token.alternatives[:5])
        title = f"committed at step {token.committed_at}, confidence {token.confidence:.0%}"
        if token.remask_count:
            title += f", re-decided {token.remask_count}x"
        if alts:
            title += f"; considered {alts}"
    if text == END_OF_STORY:
        classes.append("eos")
    elif is_line_break(text):
        classes.append("nl")
    if text[:1].isspace() or index == 0 or token.state in (BLANK, REMASKED):
        classes.append("sp")
    return TokenView(shown, shown_text(token.guess), " ".join(classes), title, shown_text(token.was))


class TextMemo:
    """One run's rendered tokens: per distinct token, its JSON object and (once asked for) its chip's HTML.

    From one step to the next most tokens are unchanged (the sampler builds new, equal `TextToken`s), so a
    run renders each distinct token once (~7% of the token renders of a 64-token, 32-step run). Entries
    are only added, from whichever thread renders: the GIL makes each dict get/set atomic, and a race at
    worst renders an equal string twice."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        # key -> [alternatives it was rendered with, token JSON, chip HTML or None until an html client]
        self.entries: dict[tuple[Any, ...], list[Any]] = {}

    def entry(self, index: int, token: TextToken) -> list[Any]:
        # Alternatives are keyed by identity (the sampler reuses a position's tuple while its top-k does not
        # change) and the entry keeps the tuple alive, so its id cannot be reused.
        alternatives = token.alternatives
        key = (
            token.state,
            token.text,
            token.guess,
            token.confidence,
            token.committed_at,
            token.remask_count,
            token.was,
            id(alternatives),
            index == 0,
        )
        entry = self.entries.get(key)
        if entry is None or entry[0] is not alternatives:
            token_json = dump_json(
                {
                    "text": token.text,
                    "state": token.state,
                    "confidence": round(token.confidence, 4),
                    "guess": token.guess,
                    # the inspector's data: top-k now (a blank) or at commit (a decided token), and its history
                    "alternatives": [[a.text, a.probability] for a in alternatives],
                    "committed_at": token.committed_at,
                    "remask_count": token.remask_count,
                    "was": token.was,
                }
            )
            entry = self.entries[key] = [alternatives, token_json, None]
        return entry

    def chip(self, chip_macro: Any, index: int, token: TextToken, entry: list[Any]) -> str:
        html = entry[2]
        if html is None:
            html = entry[2] = str(chip_macro(token_view(index, token)))
        return html


def with_tokens(data: dict[str, Any], entries: list[list[Any]]) -> str:
    """`data` dumped with a "tokens" list last, spliced in from the memo's ready token JSON: byte for byte what
    dumping the token objects with it gives, without serialising unchanged tokens again."""
    return dump_json(data)[:-1] + ',"tokens":[' + ",".join([e[1] for e in entries]) + "]}"


def changes_of_mind(frame: TextFrame) -> int:
    """How many times, up to this frame, the model sent a decided token back to blank."""
    return sum(t.remask_count for t in frame.tokens)


def render_text_frame(frame: TextFrame, ms_per_step: float, memo: TextMemo | None = None, remasking: bool = False) -> Rendered:
    """`memo`: the run's `TextMemo` (a fresh one when rendering a lone frame); the output is the same.
    `remasking`: the run may send tokens back (its frames count the changes of mind)."""
    memo = TextMemo() if memo is None else memo
    tokens = frame.tokens
    masked, generated = frame.masked, frame.generated  # each a pass over the canvas: count once
    decided = generated - masked
    data = {
        "type": "frame",
        "step": frame.step,
        "total": frame.total,
        "masked": masked,
        "decided": decided,
        "generated": generated,
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_per_step, 2),
        "committed": list(frame.committed),
        "remasked": list(frame.remasked),
    }
    entry = memo.entry
    entries = [entry(i, t) for i, t in enumerate(tokens)]
    # "tokens" is the last field: splice the memoised objects in, byte for byte what dumping them gives
    plain = with_tokens(data, entries)

    def content() -> str:
        macros = stream_macros()
        chip = memo.chip
        view = SimpleNamespace(
            step=frame.step,
            total=frame.total,
            status=f"step {frame.step} of {frame.total}, {decided} of {generated} tokens decided",
            # the chips are escaped HTML, from the template's `chip` macro
            canvas=words_html([chip(macros.chip, i, t, e) for (i, t), e in zip(enumerate(tokens), entries)], tokens),
            decided=decided,
            generated=generated,
            masked=masked,
            forward_passes=frame.forward_passes,
            ms_per_step=f"{ms_per_step:.1f}",
            changes=changes_of_mind(frame) if remasking else None,
            last=frame.step == frame.total,
        )
        return macros.text_frame(view)

    return Rendered("frame", plain, make_html=lambda: with_content(plain, content(), {}))


def decisions_json(log: DecisionLog) -> dict[str, Any]:
    """A run's decisions for programs: every commit and remask as [column, step, kind], the changes of mind."""
    return {
        "columns": log.width,
        "in_order_share": round(log.in_order_share(), 4),
        "events": [[e.column, e.step, e.kind] for e in log.events],
        "changes": [
            {
                "column": c.column,
                "before": c.before,
                "after": c.after,
                "committed_at": c.committed_at,
                "remasked_at": c.remasked_at,
                "redecided_at": c.redecided_at,
            }
            for c in log.changes()
        ],
    }


def change_lines(log: DecisionLog) -> list[str]:
    """Each change of mind as a person reads it: position, before -> after, and when."""
    lines = []
    for c in log.changes():
        before = visible(c.before).strip() or "\u2423"
        if c.after is None:
            lines.append(f"position {c.column + 1}: {before!r} sent back at step {c.remasked_at}, not decided again")
            continue
        after = visible(c.after).strip() or "\u2423"
        same = " (the same token again)" if c.after == c.before else ""
        lines.append(
            f"position {c.column + 1}: {before!r} -> {after!r}{same}, sent back at step {c.remasked_at}, "
            f"decided again at step {c.redecided_at}"
        )
    return lines


def render_text_done(
    frame: TextFrame, ms_total: float, log: DecisionLog | None = None, request: TextRequest | None = None
) -> Rendered:
    steps = max(frame.total, 1)
    data: dict[str, Any] = {
        "type": "done",
        "text": frame.text,
        "steps": frame.total,
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_total / steps, 2),
    }
    if log is not None:
        data["decisions"] = decisions_json(log)
    if frame.quality is not None:
        data["quality"] = frame.quality.as_json()
    if frame.baseline is not None:
        data["without_remasking"] = frame.baseline.as_json()
    if frame.rework is not None:
        data["rework"] = rework_json(frame.rework)
    summary = done_summary(frame.total, frame.forward_passes, ms_total)
    quality = text_summary(frame.quality, frame.baseline)

    def content() -> str:
        macros = stream_macros()
        if log is None:
            return macros.notice(f"{summary} {quality}".strip(), "done")
        changes = change_lines(log)
        remasks = sum(1 for e in log.events if e.kind == REMASK)
        view = SimpleNamespace(
            summary=summary,
            maps=[decision_map(log, "this run")],
            changes=changes,
            changes_title=(
                f"The model changed its mind {remasks} time{'s' if remasks != 1 else ''}: every token it sent "
                "back to blank, and what it decided instead"
                if remasks
                else ""
            ),
            verdict="",
            quality=quality,
            quality_note=explanation() if quality else "",
            rework=before_after(frame, ms_total),
            edit=edit_form(request, frame) if request is not None else None,
        )
        return macros.run_done(view)

    return pack(data, content, target="#notice", swap="outerHTML")


class TextRun:
    def __init__(self, request: TextRequest | None = None) -> None:
        self.memo = TextMemo()
        self.log = DecisionLog()
        self.remasking = request is not None and request.remask != "none"
        self.request = request  # its done message offers to rework it

    def frame(self, frame: TextFrame, ms_per_step: float) -> Rendered:
        self.log.record(frame)
        return render_text_frame(frame, ms_per_step, self.memo, self.remasking)

    def done(self, frame: TextFrame, ms_total: float) -> Rendered:
        return render_text_done(frame, ms_total, self.log, self.request)
