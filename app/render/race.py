"""Race frames -> messages: both lanes of a tick in one message (each lane a text canvas with its own counters),
and the done message with both decision maps on one scale and the measured verdict (models.text.race)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from app.render.decision_map import decision_map
from app.render.message import Rendered, dump_json, pack, with_content
from app.render.quality import comparison, explanation, figures
from app.render.rework import edit_form, race_before_after, rework_json
from app.render.text import TextMemo, change_lines, decisions_json, visible, with_tokens, words_html
from app.web.templating import stream_macros
from app.why import frontier_view
from models.frames import COMMITTED, NEW, TextFrame
from models.text.decisions import DecisionLog
from models.text.decoding import INFILL_MARK, TextRequest
from models.text.frontier import LENGTH, Row, race_rows, twin_row
from models.text.race import AUTOREGRESSIVE, DIFFUSION, Lane, RaceFrame

LANE_TITLES = {DIFFUSION: "Diffusion", AUTOREGRESSIVE: "Autoregressive twin"}
LANE_NOTES = {
    DIFFUSION: "reads the whole canvas every pass and can commit several tokens",
    AUTOREGRESSIVE: "the same network, causal: one token a pass, left to right, KV cache",
}
WHY_COUNTS_DIFFER = (  # shown under every race and in its verdict
    "Why passes and wall time disagree: on this CPU each pass is compute-bound, so a pass over the whole canvas "
    "costs more than a cached pass over one new token; on a GPU at batch 1 a pass over the whole canvas costs "
    "about the same as over one token, and then fewer passes win on time, but only where they keep the quality: on "
    "our model fewer passes than tokens write worse text (the judge's figures say how much)."
)


def lane_status(lane: Lane) -> str:
    return f"{LANE_TITLES[lane.name].lower()} {lane.frame.decided} of {lane.frame.generated} tokens decided"


def _settled(frame: TextFrame) -> TextFrame:
    """A finished lane's last frame, shown again at later ticks: nothing is new there any more."""
    tokens = tuple(replace(t, state=COMMITTED) if t.state == NEW else t for t in frame.tokens)
    return replace(frame, tokens=tokens, committed=(), remasked=())


class RaceRun:
    """One race's rendering state: per lane a token memo, a decision log, and its settled last frame."""

    def __init__(self, request: TextRequest | None = None) -> None:
        self.request = request  # the committed frontier's row for its setting goes beside the one run
        self.memos: dict[str, TextMemo] = {}
        self.logs: dict[str, DecisionLog] = {}
        self.seen: dict[str, int] = {}  # lane -> last step recorded in its log
        self.settled: dict[str, TextFrame] = {}

    def _lane_frame(self, lane: Lane, tick: int) -> TextFrame:
        frame = lane.frame
        if self.seen.get(lane.name, -1) < frame.step:
            self.logs.setdefault(lane.name, DecisionLog()).record(frame)
            self.seen[lane.name] = frame.step
        if frame.step == tick:
            return frame
        settled = self.settled.get(lane.name)
        if settled is None or (frame.quality is not None and settled.quality is None):
            # the judge reads every lane at the race's last tick: a lane that finished earlier gets its figures
            # then, so its badge carries them as the last lane's does
            settled = self.settled[lane.name] = _settled(frame)
        return settled

    def frame(self, race: RaceFrame, _ms: float) -> Rendered:
        lanes_json: list[str] = []
        views: list[SimpleNamespace] = []
        for lane in race.lanes:
            frame = self._lane_frame(lane, race.step)
            memo = self.memos.setdefault(lane.name, TextMemo())
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
            lanes_json.append(with_tokens(data, entries))
            views.append(
                SimpleNamespace(
                    lane=lane, frame=frame, memo=memo, entries=entries, decided=generated - masked, generated=generated
                )
            )
        head = dump_json({"type": "frame", "step": race.step, "total": race.total})
        plain = head[:-1] + ',"lanes":[' + ",".join(lanes_json) + "]}"
        status = f"pass {race.step} of {race.total}: " + ", ".join(lane_status(lane) for lane in race.lanes)

        def content() -> str:
            macros = stream_macros()
            lanes = []
            for v in views:
                lane, frame = v.lane, v.frame
                chips = words_html(
                    [v.memo.chip(macros.chip, i, t, e) for (i, t), e in zip(enumerate(frame.tokens), v.entries)], frame.tokens
                )
                lanes.append(
                    SimpleNamespace(
                        name=lane.name,
                        title=LANE_TITLES[lane.name],
                        note=LANE_NOTES[lane.name],
                        canvas=chips,
                        unseen=visible(lane.unseen).strip(),
                        finished=lane.finished,
                        finish=(finish_badge(frame, lane) if lane.finished else ""),
                        counters=[
                            (frame.forward_passes, "forward passes"),
                            (f"{v.decided}/{v.generated}", "tokens decided"),
                            (f"{lane.ms_per_pass:.1f}", "ms/pass"),
                            (f"{lane.wall_ms / 1000:.2f} s", "wall time"),
                        ],
                    )
                )
            view = SimpleNamespace(step=race.step, total=race.total, status=status, lanes=lanes)
            return macros.race_frame(view)

        return Rendered("frame", plain, make_html=lambda: with_content(plain, content(), {}))

    def done(self, race: RaceFrame, _ms_total: float) -> Rendered:
        lanes = []
        for lane in race.lanes:
            log = self.logs[lane.name]
            lanes.append(
                {
                    "lane": lane.name,
                    "text": lane.frame.text,
                    "forward_passes": lane.frame.forward_passes,
                    "wall_ms": round(lane.wall_ms, 1),
                    "ms_per_pass": round(lane.ms_per_pass, 2),
                    "unseen": lane.unseen,
                    "decisions": decisions_json(log),
                    "quality": lane.frame.quality.as_json() if lane.frame.quality else None,
                    **({"rework": rework_json(lane.frame.rework)} if lane.frame.rework else {}),
                }
            )
        data = {"type": "done", "steps": race.total, "lanes": lanes}
        summary = "Done. " + " ".join(
            f"{LANE_TITLES[lane.name]}: {lane.frame.forward_passes} passes, {lane.wall_ms / 1000:.2f} s "
            f"({lane.ms_per_pass:.1f} ms a pass){'; ' + figures(lane.frame.quality) if lane.frame.quality else ''}."
            for lane in race.lanes
        )
        judged = any(lane.frame.quality for lane in race.lanes)
        twin = next((lane.frame.quality for lane in race.lanes if lane.name == AUTOREGRESSIVE), None)

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
                verdict=" ".join(
                    filter(
                        None, [race_verdict(race), "" if self.request and self.request.is_rework else in_context(self.request)]
                    )
                ),
                quality="",
                quality_note=explanation(twin) if judged else "",
                rework=race_before_after([(LANE_TITLES[lane.name], lane.frame, lane.wall_ms) for lane in race.lanes]),
                edit=self._edit_form(race),
            )
            return stream_macros().run_done(view)

        return pack(data, content, target="#notice", swap="outerHTML")

    def _in_context(self) -> str:
        """The committed frontier's row for this setting; none for a rework (its diffusion lane runs fewer steps)."""
        return "" if self.request is not None and self.request.is_rework else in_context(self.request)

    def _edit_form(self, race: RaceFrame) -> SimpleNamespace | None:
        """The same edit form as the text page's, over the diffusion lane's text (a plain race's diffusion lane is the
        run a reworked race starts from); none for an infill race, which a rework does not start from."""
        request = self.request
        diffusion = next((lane.frame for lane in race.lanes if lane.name == DIFFUSION), None)
        if request is None or diffusion is None or INFILL_MARK in request.prompt:
            return None
        return edit_form(request, diffusion)


def in_context(request: TextRequest | None, rows: list[Row] | None = None) -> str:
    """One run is one draw: the committed frontier's figures for this run's setting (128 samples a row), so a
    lucky or unlucky seed is read beside what the setting does on average. Empty where the frontier has no row
    for it (an infill, remasking, another decoding) or no file."""
    if request is None or "___" in request.prompt or request.remask != "none":
        return ""
    if rows is None:
        view = frontier_view.page_view()
        rows = list(view.rows) if view is not None else []
    per_pass = request.length / request.steps
    same = (request.strategy, request.block_length)
    rows_here = race_rows(rows).values()
    row = next((r for r in rows_here if abs(r.tokens_per_pass - per_pass) < 1e-6 and (r.strategy, r.block_length) == same), None)
    if row is None or not any(r.model == "ar" for r in rows):
        return ""
    twin = twin_row(rows)
    return (
        f"One run is one draw: over {row.samples} samples of {LENGTH} tokens at this setting ({per_pass:g} token"
        f"{'' if per_pass == 1 else 's'} a pass), the committed measurement gives the diffusion model judge "
        f"perplexity {row.judge_ppl:,.1f} ({row.real_words:.0%} real words) and the twin {twin.judge_ppl:,.1f} "
        f"({twin.real_words:.0%})."
    )


def finish_badge(frame: TextFrame, lane: Lane) -> str:
    """A finished lane's badge: its passes and time, and (at the race's last tick, once judged) its quality."""
    badge = f"finished: {frame.forward_passes} passes, {lane.wall_ms / 1000:.2f} s"
    return f"{badge}; {figures(frame.quality)}" if frame.quality else badge


def race_verdict(race: RaceFrame) -> str:
    """Passes, wall time and quality, measured, for both lanes: fewer passes, what that cost in time here, and
    what each lane wrote by the judge (speed means nothing without it)."""
    by_name = {lane.name: lane for lane in race.lanes}
    diffusion, ar = by_name.get(DIFFUSION), by_name.get(AUTOREGRESSIVE)
    if diffusion is None or ar is None or not diffusion.frame.forward_passes or not diffusion.wall_ms:
        return ""
    passes = ar.frame.forward_passes / diffusion.frame.forward_passes
    time = ar.wall_ms / diffusion.wall_ms
    took = f"finished {time:.1f}x sooner" if time >= 1 else f"took {1 / time:.1f}x as long"
    if diffusion.frame.forward_passes == ar.frame.forward_passes:
        speed = f"Both lanes used {ar.frame.forward_passes} forward passes (one token a pass); diffusion {took}"
    else:
        fewer = f"{passes:.1f}x fewer" if passes >= 1 else f"{1 / passes:.1f}x more"
        speed = f"Diffusion used {fewer} forward passes {'and' if time >= 1 else 'but'} {took}"
    speed += " in wall time on this server"
    quality = comparison(diffusion.frame.quality, ar.frame.quality)
    if not quality:
        quality = "no judge scored either text, so this says nothing of how they read"
    return f"{speed}; {quality}. {WHY_COUNTS_DIFFER}"
