"""Frames -> outgoing messages. Python decides (classes, counters, wording); templates render.

Each frame becomes one `Rendered`: the same JSON message twice, once with a `content` field holding the
HTML fragment (what htmx's hx-ws swaps into the page) and once without (for `?format=json` clients).
The JSON is serialised in the engine's render thread; the HTML variant is rendered on first need and kept
(the engine asks for it in the render thread while an html client watches the job, so a json-only run
never runs Jinja, and a later html client of a cached json-only run still gets it). Either way each
message is serialised once and shared by every subscriber: the event loop only sends finished strings.
Producers yield each frame as a deferred render (`functools.partial`), so the sampler thread never waits
for rendering (see app/engine.py).

Text runs keep a per-run memo (`_TextMemo`): a token chip's HTML and a token's JSON depend only on the
token, and from one step to the next most tokens do not change, so each distinct chip is rendered once.
"""

from __future__ import annotations

import base64
import json
import struct
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from time import perf_counter
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from app.decision_map import decision_map
from app.protocol import ImageRequest, TextRequest
from app.settings import REPO_ROOT
from models.frames import BLANK, COMMITTED, FIXED, NEW, REMASKED, ImageFrame, TextFrame, TextToken
from models.text.decisions import REMASK, DecisionLog
from models.text.race import AUTOREGRESSIVE, DIFFUSION, Lane, RaceFrame

templates = Jinja2Templates(directory=REPO_ROOT / "templates")
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def stream_macros() -> Any:
    """The fragments the websockets send live as macros in templates/stream.html (one file, one job)."""
    return templates.env.get_template("stream.html").module


class Rendered:
    """One outgoing message: `json` (JSON text, for ?format=json) and `html` (the same JSON text with the
    "content" fragment for htmx), the latter rendered by `make_html` on first access and then kept."""

    __slots__ = ("type", "json", "_html", "_make_html")

    def __init__(self, type: str, json: str, *, html: str | None = None, make_html: Callable[[], str] | None = None):
        assert html is not None or make_html is not None
        self.type = type  # "frame" | "done" | "queued" | "error"
        self.json = json
        self._html = html
        self._make_html = make_html

    @property
    def html(self) -> str:
        html = self._html
        if html is None:
            make = self._make_html
            if make is None:  # another thread rendered it meanwhile (it sets _html before clearing this)
                return self._html  # type: ignore[return-value]
            html = make()  # two threads may both get here: they render equal strings, either one is kept
            self._html = html
            self._make_html = None  # drop the frame it was rendered from
        return html

    @property
    def html_ready(self) -> bool:
        return self._html is not None

    @property
    def nbytes(self) -> int:
        """Memory held. A pending HTML variant is counted as the JSON's length again (about what the frame it
        will be rendered from holds); the engine renders a run's HTML before it caches and counts the run."""
        html = self._html
        return len(self.json) + (len(html) if html is not None else len(self.json)) + 64

    def __repr__(self) -> str:
        return f"Rendered({self.type!r}, {self.json[:60]!r}..., html_ready={self.html_ready})"


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _with_content(plain: str, content: str, swap: dict[str, str]) -> str:
    """`plain` (a dumped object) with "content" (and `swap`) appended: byte for byte what dumping
    `{**data, "content": content, **swap}` gives."""
    return plain[:-1] + "," + _dump({"content": content, **swap})[1:]


def _pack(data: dict[str, Any], content: Callable[[], str], **swap: str) -> Rendered:
    """Serialise `data` now; render the HTML message (`content()` appended) only when someone asks for it."""
    plain = _dump(data)
    return Rendered(data["type"], plain, make_html=lambda: _with_content(plain, content(), swap))


# ---------------------------------------------------------------------------------------------------------
# Text


def confidence_class(confidence: float) -> str:
    """Five colour buckets, low (warm) to high (cool)."""
    return f"c{min(4, max(0, int(confidence * 5)))}"


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


def token_view(index: int, token: TextToken) -> TokenView:
    text = token.text
    shown = visible(text).strip() or ("\u2423" if text else "")
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
            title = f"blank; top guess {token.guess.strip()!r}" if token.guess else "blank"
    else:
        classes.append(confidence_class(token.confidence))
        if token.state == NEW:
            classes.append("new")
        if token.remask_count:
            classes.append("redecided")
        alts = ", ".join(f"{a.text.strip()!r} {a.probability:.0%}" for a in token.alternatives[:5])
        title = f"committed at step {token.committed_at}, confidence {token.confidence:.0%}"
        if token.remask_count:
            title += f", re-decided {token.remask_count}x"
        if alts:
            title += f"; considered {alts}"
    if text[:1].isspace() or index == 0 or token.state in (BLANK, REMASKED):
        classes.append("sp")
    return TokenView(shown, visible(token.guess).strip(), " ".join(classes), title)


def text_status(frame: TextFrame) -> str:
    return f"step {frame.step} of {frame.total}, {frame.decided} of {frame.generated} tokens decided"


class _TextMemo:
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
        # Alternatives only show on committed chips. They are keyed by identity (the sampler reuses a slot's
        # tuple from frame to frame) and the entry keeps the tuple alive, so its id cannot be reused.
        alternatives = token.alternatives if token.state in (COMMITTED, NEW) else None
        key = (token.state, token.text, token.guess, token.confidence, token.committed_at, token.remask_count,
               id(alternatives), index == 0)
        entry = self.entries.get(key)
        if entry is None or entry[0] is not alternatives:
            token_json = _dump({"text": token.text, "state": token.state, "confidence": round(token.confidence, 4),
                                "guess": token.guess})
            entry = self.entries[key] = [alternatives, token_json, None]
        return entry

    def chip(self, chip_macro: Any, index: int, token: TextToken, entry: list[Any]) -> str:
        html = entry[2]
        if html is None:
            html = entry[2] = str(chip_macro(token_view(index, token)))
        return html


def render_text_frame(frame: TextFrame, ms_per_step: float, memo: _TextMemo | None = None) -> Rendered:
    """`memo`: the run's `_TextMemo` (a fresh one when rendering a lone frame); the output is the same."""
    memo = _TextMemo() if memo is None else memo
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
    plain = _dump(data)[:-1] + ',"tokens":[' + ",".join([e[1] for e in entries]) + "]}"

    def content() -> str:
        macros = stream_macros()
        chip = memo.chip
        view = SimpleNamespace(
            step=frame.step,
            total=frame.total,
            status=f"step {frame.step} of {frame.total}, {decided} of {generated} tokens decided",
            # the chips are escaped HTML, from the template's `chip` macro
            canvas=Markup("".join([chip(macros.chip, i, t, e) for (i, t), e in zip(enumerate(tokens), entries)])),
            decided=decided,
            generated=generated,
            masked=masked,
            forward_passes=frame.forward_passes,
            ms_per_step=f"{ms_per_step:.1f}",
            last=frame.step == frame.total,
        )
        return macros.text_frame(view)

    return Rendered("frame", plain, make_html=lambda: _with_content(plain, content(), {}))


def decisions_json(log: DecisionLog) -> dict[str, Any]:
    """A run's decisions for programs: every commit and remask as [column, step, kind], the changes of mind."""
    return {
        "columns": log.width,
        "in_order_share": round(log.in_order_share(), 4),
        "events": [[e.column, e.step, e.kind] for e in log.events],
        "changes": [
            {"column": c.column, "before": c.before, "after": c.after, "committed_at": c.committed_at,
             "remasked_at": c.remasked_at, "redecided_at": c.redecided_at}
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
        lines.append(f"position {c.column + 1}: {before!r} -> {after!r}{same}, sent back at step {c.remasked_at}, "
                     f"decided again at step {c.redecided_at}")
    return lines


def render_text_done(frame: TextFrame, ms_total: float, log: DecisionLog | None = None) -> Rendered:
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
    summary = f"Done: {frame.total} steps, {frame.forward_passes} forward passes, {ms_total / steps:.1f} ms per step."

    def content() -> str:
        macros = stream_macros()
        if log is None:
            return macros.notice(summary, "done")
        changes = change_lines(log)
        remasks = sum(1 for e in log.events if e.kind == REMASK)
        view = SimpleNamespace(
            summary=summary,
            maps=[decision_map(log, "this run")],
            changes=changes,
            changes_title=(f"The model changed its mind {remasks} time{'s' if remasks != 1 else ''}: every token it sent "
                           "back to blank, and what it decided instead" if remasks else ""),
            verdict="",
        )
        return macros.run_done(view)

    return _pack(data, content, target="#notice", swap="outerHTML")


Deferred = Callable[[], Rendered]


class RunRenderer(Protocol):
    """One run's renderer: it may keep state across the run's frames (a memo, a decision log)."""

    def frame(self, frame: Any, ms_per_step: float) -> Rendered: ...

    def done(self, frame: Any, ms_total: float) -> Rendered: ...


def _producer(
    frames: Callable[[Callable[[], bool]], Iterator[Any]], new_run: Callable[[], RunRenderer]
) -> Callable[..., Iterator[Deferred]]:
    """Yields one deferred render per frame, then the done message if the run finished;
    `ms_per_step` is the sampler's own time for that step (rendering happens later, elsewhere). The render
    thread runs the deferred renders in order, so a run renderer sees its frames in order, then `done`."""

    def produce(should_stop: Callable[[], bool]) -> Iterator[Deferred]:
        run = new_run()
        last = None
        total_ms = 0.0
        started = perf_counter()
        for frame in frames(should_stop):
            elapsed = (perf_counter() - started) * 1000
            total_ms += elapsed if frame.step > 0 else 0.0
            yield partial(run.frame, frame, elapsed)
            last = frame
            started = perf_counter()
        if last is not None and last.step == last.total and not should_stop():
            yield partial(run.done, last, total_ms)

    return produce


class _TextRun:
    def __init__(self) -> None:
        self.memo = _TextMemo()
        self.log = DecisionLog()

    def frame(self, frame: TextFrame, ms_per_step: float) -> Rendered:
        self.log.record(frame)
        return render_text_frame(frame, ms_per_step, self.memo)

    def done(self, frame: TextFrame, ms_total: float) -> Rendered:
        return render_text_done(frame, ms_total, self.log)


def text_producer(sample: Callable[..., Iterator[TextFrame]], request: TextRequest) -> Callable[..., Iterator[Deferred]]:
    return _producer(partial(sample, request), _TextRun)


# ---------------------------------------------------------------------------------------------------------
# Race: two text lanes on one clock (models.text.race)

LANE_TITLES = {DIFFUSION: "Diffusion", AUTOREGRESSIVE: "Autoregressive twin"}
LANE_NOTES = {
    DIFFUSION: "reads the whole canvas every pass and commits several tokens",
    AUTOREGRESSIVE: "the same network, causal: one token a pass, left to right, KV cache",
}
WHY_COUNTS_DIFFER = (
    "Why passes and wall time disagree: on this CPU each pass is compute-bound, so a pass over the whole canvas "
    "costs more than a cached pass over one new token; on a GPU at batch 1 a pass over 64 positions costs "
    "about the same as over one, and then fewer passes win."
)


def lane_status(lane: Lane) -> str:
    return f"{LANE_TITLES[lane.name].lower()} {lane.frame.decided} of {lane.frame.generated} tokens decided"


def _settled(frame: TextFrame) -> TextFrame:
    """A finished lane's last frame, shown again at later ticks: nothing is new there any more."""
    tokens = tuple(replace(t, state=COMMITTED) if t.state == NEW else t for t in frame.tokens)
    return replace(frame, tokens=tokens, committed=(), remasked=())


class _RaceRun:
    """One race's rendering state: per lane a token memo, a decision log, and its settled last frame."""

    def __init__(self) -> None:
        self.memos: dict[str, _TextMemo] = {}
        self.logs: dict[str, DecisionLog] = {}
        self.seen: dict[str, int] = {}       # lane -> last step recorded in its log
        self.settled: dict[str, TextFrame] = {}

    def _lane_frame(self, lane: Lane, tick: int) -> TextFrame:
        frame = lane.frame
        if self.seen.get(lane.name, -1) < frame.step:
            self.logs.setdefault(lane.name, DecisionLog()).record(frame)
            self.seen[lane.name] = frame.step
        if frame.step == tick:
            return frame
        if lane.name not in self.settled:
            self.settled[lane.name] = _settled(frame)
        return self.settled[lane.name]

    def frame(self, race: RaceFrame, _ms: float) -> Rendered:
        lanes_json: list[str] = []
        views: list[SimpleNamespace] = []
        for lane in race.lanes:
            frame = self._lane_frame(lane, race.step)
            memo = self.memos.setdefault(lane.name, _TextMemo())
            entries = [memo.entry(i, t) for i, t in enumerate(frame.tokens)]
            masked, generated = frame.masked, frame.generated
            data = {
                "lane": lane.name,
                "step": frame.step,
                "total": frame.total,
                "forward_passes": frame.forward_passes,
                "masked": masked,
                "decided": generated - masked,
                "generated": generated,
                "ms_per_pass": round(lane.ms_per_pass, 2),
                "wall_ms": round(lane.wall_ms, 1),
                "finished": lane.finished,
                "committed": list(frame.committed),
                "remasked": list(frame.remasked),
                "unseen": lane.unseen,
            }
            lanes_json.append(_dump(data)[:-1] + ',"tokens":[' + ",".join([e[1] for e in entries]) + "]}")
            views.append(SimpleNamespace(lane=lane, frame=frame, memo=memo, entries=entries, decided=generated - masked,
                                         generated=generated))
        plain = _dump({"type": "frame", "step": race.step, "total": race.total})[:-1] + ',"lanes":[' + ",".join(lanes_json) + "]}"
        status = f"pass {race.step} of {race.total}: " + ", ".join(lane_status(lane) for lane in race.lanes)

        def content() -> str:
            macros = stream_macros()
            lanes = []
            for v in views:
                lane, frame = v.lane, v.frame
                chips = "".join([v.memo.chip(macros.chip, i, t, e) for (i, t), e in zip(enumerate(frame.tokens), v.entries)])
                lanes.append(SimpleNamespace(
                    name=lane.name,
                    title=LANE_TITLES[lane.name],
                    note=LANE_NOTES[lane.name],
                    canvas=Markup(chips),
                    unseen=visible(lane.unseen).strip(),
                    finished=lane.finished,
                    finish=(f"finished: {frame.forward_passes} passes, {lane.wall_ms / 1000:.2f} s" if lane.finished else ""),
                    counters=[
                        (frame.forward_passes, "forward passes"),
                        (f"{v.decided}/{v.generated}", "tokens decided"),
                        (f"{lane.ms_per_pass:.1f}", "ms/pass"),
                        (f"{lane.wall_ms / 1000:.2f} s", "wall time"),
                    ],
                ))
            view = SimpleNamespace(step=race.step, total=race.total, status=status, lanes=lanes)
            return macros.race_frame(view)

        return Rendered("frame", plain, make_html=lambda: _with_content(plain, content(), {}))

    def done(self, race: RaceFrame, _ms_total: float) -> Rendered:
        lanes = []
        for lane in race.lanes:
            log = self.logs[lane.name]
            lanes.append({
                "lane": lane.name,
                "text": lane.frame.text,
                "forward_passes": lane.frame.forward_passes,
                "wall_ms": round(lane.wall_ms, 1),
                "ms_per_pass": round(lane.ms_per_pass, 2),
                "unseen": lane.unseen,
                "decisions": decisions_json(log),
            })
        data = {"type": "done", "steps": race.total, "lanes": lanes}
        summary = "Done. " + " ".join(
            f"{LANE_TITLES[lane.name]}: {lane.frame.forward_passes} passes, {lane.wall_ms / 1000:.2f} s "
            f"({lane.ms_per_pass:.1f} ms a pass)." for lane in race.lanes
        )

        def content() -> str:
            maps = [decision_map(self.logs[lane.name], LANE_TITLES[lane.name], rows=race.total) for lane in race.lanes]
            changes: list[str] = []
            for lane in race.lanes:
                changes += [f"{LANE_TITLES[lane.name]}, {line}" for line in change_lines(self.logs[lane.name])]
            remasks = sum(m.remasks for m in maps)
            view = SimpleNamespace(
                summary=summary,
                maps=maps,
                changes=changes,
                changes_title=f"Changes of mind ({remasks})" if remasks else "",
                verdict=race_verdict(race),
            )
            return stream_macros().run_done(view)

        return _pack(data, content, target="#notice", swap="outerHTML")


def race_verdict(race: RaceFrame) -> str:
    """Both counts, measured, in one line: fewer passes and, separately, what that cost in time here."""
    by_name = {lane.name: lane for lane in race.lanes}
    diffusion, ar = by_name.get(DIFFUSION), by_name.get(AUTOREGRESSIVE)
    if diffusion is None or ar is None or not diffusion.frame.forward_passes or not diffusion.wall_ms:
        return ""
    passes = ar.frame.forward_passes / diffusion.frame.forward_passes
    time = ar.wall_ms / diffusion.wall_ms
    if passes >= 1:
        by_passes = f"Diffusion used {passes:.1f}x fewer forward passes"
    else:
        by_passes = f"Diffusion used {1 / passes:.1f}x more forward passes"
    if time >= 1:
        by_time = f"and finished {time:.1f}x sooner in wall time on this server"
    else:
        by_time = f"but took {1 / time:.1f}x as long in wall time on this server"
    return f"{by_passes} {by_time}. {WHY_COUNTS_DIFFER}"


def race_producer(sample: Callable[..., Iterator[RaceFrame]], request: TextRequest) -> Callable[..., Iterator[Deferred]]:
    return _producer(partial(sample, request), _RaceRun)


# ---------------------------------------------------------------------------------------------------------
# Image


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (H, W) or (1, H, W) -> an 8-bit greyscale PNG, written directly (IHDR, one IDAT, IEND).

    For a 28x28 digit this is ~5x cheaper than PIL's encoder (whose per-call setup dominates at this size),
    and the render thread encodes two images a step."""
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[0]
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width = array.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # each scanline starts with filter type 0 (none)
    rows[:, 1:] = array
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit depth, greyscale, no interlace
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(rows.tobytes())),
                     _chunk(b"IEND", b"")))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_base64(image: np.ndarray) -> str:
    """uint8 (H, W) or (1, H, W) -> base64 PNG."""
    return base64.b64encode(png_bytes(image)).decode("ascii")


PLOT_W, PLOT_H, PLOT_PAD = 320, 140, 28


def _plot_xy(t: float, level: float) -> tuple[float, float]:
    x = PLOT_PAD + (t / 999.0) * (PLOT_W - 2 * PLOT_PAD)
    y = PLOT_H - PLOT_PAD - level * (PLOT_H - 2 * PLOT_PAD)
    return round(x, 1), round(y, 1)


@lru_cache(maxsize=8)
def _schedule_path(schedule: bytes) -> str:
    levels = np.frombuffer(schedule, dtype=np.float64)
    points = [_plot_xy(t, float(levels[t])) for t in range(0, len(levels), 10)] + [_plot_xy(999, float(levels[-1]))]
    return "M" + " L".join(f"{x},{y}" for x, y in points)


def schedule_plot(schedule: np.ndarray, timestep: int, noise_level: float) -> SimpleNamespace:
    """Coordinates for the noise-schedule SVG: the curve sqrt(1 - alpha_bar_t) and the current step."""
    path = _schedule_path(np.ascontiguousarray(schedule, dtype=np.float64).tobytes())
    x, y = _plot_xy(timestep, noise_level)
    return SimpleNamespace(
        w=PLOT_W,
        h=PLOT_H,
        pad=PLOT_PAD,
        path=path,
        x=x,
        y=y,
        x0=PLOT_PAD,
        x1=PLOT_W - PLOT_PAD,
        y0=PLOT_H - PLOT_PAD,
        y1=PLOT_PAD,
        label=f"t = {timestep}, noise {noise_level:.2f}",
    )


def image_status(frame: ImageFrame) -> str:
    return f"step {frame.step} of {frame.total}, timestep {frame.timestep}, noise level {frame.noise_level:.2f}"


def render_image_frame(frame: ImageFrame, ms_per_step: float, schedule: np.ndarray) -> Rendered:
    xt_png, x0_png = png_base64(frame.xt), png_base64(frame.x0)
    probs = [round(p, 4) for p in frame.digit_probabilities[0]] if frame.digit_probabilities else []
    data: dict[str, Any] = {
        "type": "frame",
        "step": frame.step,
        "total": frame.total,
        "timestep": frame.timestep,
        "noise_level": round(float(frame.noise_level), 5),
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_per_step, 2),
        "xt_png": xt_png,
        "x0_png": x0_png,
    }
    if probs:
        data["digit_probabilities"] = probs
    if frame.note:
        data["note"] = frame.note
    meter = None
    if probs:
        best = int(np.argmax(probs))
        meter = SimpleNamespace(digit=best, percent=round(probs[best] * 100), bucket=min(10, round(probs[best] * 10)))
    view = SimpleNamespace(
        step=frame.step,
        total=frame.total,
        status=image_status(frame),
        xt_png=xt_png,
        x0_png=x0_png,
        timestep=frame.timestep,
        noise_level=f"{frame.noise_level:.2f}",
        forward_passes=frame.forward_passes,
        ms_per_step=f"{ms_per_step:.1f}",
        plot=schedule_plot(schedule, frame.timestep, float(frame.noise_level)),
        meter=meter,
        note=frame.note,
    )
    return _pack(data, lambda: stream_macros().image_frame(view))


def render_image_done(frame: ImageFrame, ms_total: float) -> Rendered:
    steps = max(frame.total, 1)
    data = {
        "type": "done",
        "png": png_base64(frame.xt),
        "steps": frame.total,
        "forward_passes": frame.forward_passes,
        "ms_per_step": round(ms_total / steps, 2),
    }
    summary = f"Done: {frame.total} steps, {frame.forward_passes} forward passes, {ms_total / steps:.1f} ms per step."
    return _pack(data, lambda: stream_macros().notice(summary, "done"), target="#notice", swap="outerHTML")


class _ImageRun:
    def __init__(self, schedule: np.ndarray) -> None:
        self.schedule = schedule

    def frame(self, frame: ImageFrame, ms_per_step: float) -> Rendered:
        return render_image_frame(frame, ms_per_step, self.schedule)

    def done(self, frame: ImageFrame, ms_total: float) -> Rendered:
        return render_image_done(frame, ms_total)


def image_producer(
    sample: Callable[..., Iterator[ImageFrame]], request: ImageRequest, schedule: np.ndarray
) -> Callable[..., Iterator[Deferred]]:
    return _producer(partial(sample, request), partial(_ImageRun, schedule))


# ---------------------------------------------------------------------------------------------------------
# Messages that are not frames


def render_queued(position: int) -> Rendered:
    data = {"type": "queued", "position": position}
    text = f"Waiting for a free slot: position {position} in line."
    return _pack(data, lambda: stream_macros().notice(text, "queued"), target="#notice", swap="outerHTML")


def render_error(message: str) -> Rendered:
    data = {"type": "error", "message": message}
    return _pack(data, lambda: stream_macros().notice(message, "error"), target="#notice", swap="outerHTML")
