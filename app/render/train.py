"""Live-twins points -> messages (`/train`): one frame per measured point, with both models' loss curves so far as a
server-drawn SVG (`app.why.loss_plot`, the data-efficiency plot's geometry), the counters, the latest samples and,
once it happened, the point where the twin's held-out loss turned up; the done message is the measured summary.

A frame's JSON carries its own point only (the GIF renderer and /replay accumulate them); its HTML carries the whole
plot so far, so the player can scrub back to any moment of the run."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

from app.render.message import Rendered, pack
from app.web.templating import stream_macros
from app.why.loss_plot import Mark, PlotView, plot_view
from models.text.live_request import OWN, TURN_PATIENCE, TURN_RISE, TrainRequest, summary, turning_point

AR, DIFFUSION = "autoregressive twin", "masked diffusion (NELBO: an upper bound)"
RULE = f"its last {TURN_PATIENCE} points are not all {TURN_RISE:.0%} above its best"
X_LABEL = "epochs over the training part (log scale)"
Y_LABEL = "loss, nats per byte"


@dataclass(frozen=True)
class Curve:
    """One model's point as the plot reads it (`app.why.loss_plot.LossPoint`)."""

    epochs: float
    train_loss: float
    heldout_loss: float


def point_json(point: Any) -> dict[str, Any]:
    return {
        "train_step": point.step,
        "epochs": round(point.epochs, 3),
        "seconds": round(point.seconds, 2),
        "ar_train": point.ar_train,
        "ar_held_out": point.ar_held_out,
        "diffusion_train": point.diffusion_train,
        "diffusion_held_out": point.diffusion_held_out,
    }


@dataclass(frozen=True)
class TrainPlot:
    """The curves' plot and, where it falls inside the plot's loss range, the byte-frequency floor as a level line."""

    view: PlotView
    baseline_y: float | None


def curves_plot(points: list[Any], turn: int | None, baseline: float) -> TrainPlot | None:
    """Both models' curves over the points past step 0 (epochs on a log axis), the twin's turn marked, the
    byte-frequency floor drawn across; None until a point past step 0 exists."""
    shown = [p for p in points if p.epochs > 0]
    if not shown:
        return None
    curves = {
        AR: [Curve(p.epochs, p.ar_train, p.ar_held_out) for p in shown],
        DIFFUSION: [Curve(p.epochs, p.diffusion_train, p.diffusion_held_out) for p in shown],
    }
    marks = []
    if turn is not None and points[turn].epochs > 0:
        best = points[turn]
        marks.append(Mark(best.epochs, best.ar_held_out, "1", ("the twin's best held-out loss; it has risen since",)))
    label = f"Loss curves of both models over {shown[-1].epochs:.1f} epochs"
    view = replace(plot_view(curves, marks, aria_label=label, dotted=()), x_label=X_LABEL, y_label=Y_LABEL)
    low, high = view.y_ticks[0], view.y_ticks[-1]
    inside = low.value <= baseline <= high.value
    y = low.pos + (baseline - low.value) * (high.pos - low.pos) / (high.value - low.value) if inside else None
    return TrainPlot(view, round(y, 1) if y is not None else None)


class TrainRun:
    """One live-twins run: the points so far (each frame draws all of them), the latest samples and the turn."""

    def __init__(self, request: TrainRequest, baseline: float, recorded: str = "") -> None:
        self.request = request
        self.baseline = baseline  # the held-out loss of the training bytes' frequencies alone (`byte_frequency_loss`)
        self.recorded = recorded  # where a recorded run came from ("" for a run trained now)
        self.points: list[Any] = []
        self.samples: dict[str, str] = {}
        self.sample_epochs = 0.0
        self.turn: int | None = None  # index of the twin's best point, once it has turned

    def frame(self, point: Any) -> Rendered:
        self.points.append(point)
        if point.samples:
            self.samples, self.sample_epochs = dict(point.samples), point.epochs
        if self.turn is None:
            self.turn = turning_point([p.ar_held_out for p in self.points])
        index = len(self.points) - 1
        data: dict[str, Any] = {"type": "frame", "step": index, **point_json(point)}
        data["byte_frequency_loss"] = round(self.baseline, 4)
        if point.samples:
            data["samples"] = dict(point.samples)
        if self.turn is not None:
            data["ar_turned_at_epoch"] = round(self.points[self.turn].epochs, 2)
        points, samples, sample_epochs, turn = list(self.points), dict(self.samples), self.sample_epochs, self.turn

        def html() -> str:
            return stream_macros().train_frame(self._view(index, points, samples, sample_epochs, turn))

        return pack(data, html)

    def _view(
        self, index: int, points: list[Any], samples: dict[str, str], sample_epochs: float, turn: int | None
    ) -> SimpleNamespace:
        point = points[-1]
        ar_best = min(p.ar_held_out for p in points)
        diffusion_best = min(p.diffusion_held_out for p in points)
        status = f"epoch {point.epochs:.1f}: twin {point.ar_held_out:.3f}, diffusion {point.diffusion_held_out:.3f} held out"
        turned = (
            f"The twin's held-out loss turned up after epoch {points[turn].epochs:.1f} (its best, "
            f"{points[turn].ar_held_out:.3f}, marked 1): it is memorising the training part."
            if turn is not None
            else "The twin's held-out loss has not turned up yet."
        )
        return SimpleNamespace(
            step=index,
            status=status,
            counters=[
                (f"{point.epochs:.1f}", "epochs"),
                (f"{point.step:,}", "training steps"),
                (f"{point.seconds:.0f}/{self.request.seconds}", "seconds"),
                (f"{point.ar_held_out:.3f}", f"twin held out (best {ar_best:.3f})"),
                (f"{point.diffusion_held_out:.3f}", f"diffusion held out (best {diffusion_best:.3f})"),
            ],
            plot=curves_plot(points, turn, self.baseline),
            baseline=f"{self.baseline:.3f}",
            turned=turned,
            samples=sample_view(samples, sample_epochs),
        )

    def done(self) -> Rendered:
        measured = summary(self.points)
        data = {"type": "done", **measured, "byte_frequency_loss": round(self.baseline, 4), "recorded": self.recorded or None}
        notice = done_sentence(measured, self.request, bool(self.recorded))
        view = SimpleNamespace(notice=notice, rows=summary_rows(measured), recorded=self.recorded)
        return pack(data, lambda: stream_macros().train_done(view), target="#notice", swap="outerHTML")


def shown_text(text: str) -> str:
    """A sample as the page prints it: an early model writes any byte, so control characters show as the replacement
    mark (as bytes that are no UTF-8 already do), and a line break as a space."""
    return "".join(" " if c in "\n\t" else ("\ufffd" if unicodedata.category(c) in ("Cc", "Cs") else c) for c in text)


def sample_view(samples: dict[str, str], epochs: float) -> SimpleNamespace | None:
    if not samples:
        return None
    return SimpleNamespace(
        epochs=f"{epochs:.1f}",
        prompt=shown_text(samples.get("prompt", "")),
        lanes=[
            ("ar", "Twin", shown_text(samples.get("ar", ""))),
            ("diffusion", "Diffusion", shown_text(samples.get("diffusion", ""))),
        ],
    )


def _model_sentence(name: str, summary: dict[str, Any]) -> str:
    best, epoch, last = summary[f"{name}_best"], summary[f"{name}_best_epoch"], summary[f"{name}_last"]
    if summary[f"{name}_still_improving"]:
        return f"best {best:.3f} at its last point, epoch {epoch:g} (still improving)"
    shape = "turned up" if summary[f"{name}_turned_at_epoch"] is not None else "past its best, not turned up"
    return f"best {best:.3f} at epoch {epoch:g}, {last:.3f} at the end ({shape})"


def done_sentence(summary: dict[str, Any], request: TrainRequest, recorded: bool = False) -> str:
    """The done notice: short enough for a slide (the table under the run has the rest)."""
    text = "your text" if request.preset == OWN else request.preset
    start = "A recorded run, replayed" if recorded else "Done"
    return (
        f"{start}: {summary['steps']:,} steps, {summary['epochs']:g} epochs of {text} in {summary['seconds']:.0f} s. "
        f"Held out, twin: {_model_sentence('ar', summary)}; diffusion: {_model_sentence('diffusion', summary)}."
    )


def summary_rows(summary: dict[str, Any]) -> list[SimpleNamespace]:
    rows = []
    for name, title in (("ar", "Autoregressive twin"), ("diffusion", "Masked diffusion (NELBO, an upper bound)")):
        turned = summary[f"{name}_turned_at_epoch"]
        rows.append(
            SimpleNamespace(
                name=name,
                title=title,
                best=f"{summary[f'{name}_best']:.3f}",
                epoch=f"{summary[f'{name}_best_epoch']:g}",
                last=f"{summary[f'{name}_last']:.3f}",
                state="still improving"
                if summary[f"{name}_still_improving"]
                else (f"turned up after epoch {turned:g}" if turned is not None else f"past its best, not turned up ({RULE})"),
            )
        )
    return rows
