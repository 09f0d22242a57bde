"""The image race page's committed measurement, read at request time: the timing menu, the recovery table (how
often each model ends as the digit asked for after the forced stroke, per timing, with Wilson intervals) and the
sentences that summarise it."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from app.render.image_race import TIMING_CHOICES, interval_text, percent, rate_text
from app.why.data_files import data_url
from models.image.race_recovery import RECOVERY_FILE, Outcome, Recovery, TimingRow, load_recovery
from models.image.request import ImageRaceRequest, MistakeTiming


def page_view(request: ImageRaceRequest, path: Path = RECOVERY_FILE) -> SimpleNamespace:
    """What the image race page shows besides the run: the timing menu, and the committed recovery table (None
    when the file is missing), the row of this request's timing marked."""
    recovery = load_recovery(path)
    return SimpleNamespace(
        timings=TIMING_CHOICES,
        recovery=recovery_table(recovery, request.mistake_at) if recovery is not None else None,
        recovery_url=data_url(path),
    )


def outcome_cell(outcome: Outcome, stroke: bool = True) -> str:
    """'75 of 100 (75%, 66-83%); 86% of the stroke's ink left': one model's cell of the page's table (without the
    stroke, the ink the model puts in its pixels of its own accord)."""
    ink = "of the stroke's ink left" if stroke else "ink in the stroke's pixels, unforced"
    counts = f"{outcome.matches} of {outcome.samples} ({percent(outcome.rate)}, {interval_text(outcome)})"
    return f"{counts}; {percent(outcome.ink_left)} {ink}"


def _stroke_in_ddpm(row: TimingRow, steps: int) -> str:
    noise = math.sqrt(max(0.0, 1 - row.signal**2))
    return f"after step {row.step} of {steps}, t = {row.timestep}: x_t = {row.signal:.2f} x0 + {noise:.2f} noise"


def recovery_table(recovery: Recovery, current: MistakeTiming) -> SimpleNamespace:
    rows = [
        SimpleNamespace(
            label=row.timing,
            when=_stroke_in_ddpm(row, recovery.steps),
            ddpm=outcome_cell(row.ddpm),
            pixel_ar=outcome_cell(row.pixel_ar),
            current=row.timing == current,
        )
        for row in recovery.timings
    ]
    ddpm, pixel = recovery.baseline.get("ddpm"), recovery.baseline.get("pixel_ar")
    if ddpm is not None and pixel is not None:
        cells = {"ddpm": outcome_cell(ddpm, stroke=False), "pixel_ar": outcome_cell(pixel, stroke=False)}
        rows.insert(0, SimpleNamespace(label="no stroke", when="the same seeds without it", current=False, **cells))
    return SimpleNamespace(
        rows=rows,
        summary=recovery_summary(recovery),
        region=region_sentence(recovery),
        conditions=(
            f"{recovery.per_digit * 10} samples a model and row ({recovery.per_digit} of each digit), DDIM "
            f"{recovery.steps} steps, guidance {recovery.guidance:g}, seed {recovery.seed}; the final image read by the "
            "held-out digit classifier, trained apart from both models; intervals: Wilson, 95%."
        ),
        command=recovery.command,
    )


def recovery_summary(recovery: Recovery) -> str:
    """Where global refinement fixes the stroke and where it no longer can, read off the measured numbers: a timing
    whose interval overlaps the DDPM's interval without the stroke keeps its rate (no loss the measurement can
    tell apart); one wholly below it falls below it."""
    baseline = recovery.baseline.get("ddpm")
    if not recovery.timings or baseline is None:
        return ""
    fixed = [row for row in recovery.timings if row.ddpm.high >= baseline.low]
    lost = [row for row in recovery.timings if row.ddpm.high < baseline.low]

    def listed(rows: list[TimingRow]) -> str:
        return " or ".join(
            f"{row.timing} ({percent(row.ddpm.rate)}, {interval_text(row.ddpm)}; {percent(row.ddpm.ink_left)} of its ink left)"
            for row in rows
        )

    against = f"Without the stroke the DDPM ends as the digit asked for in {rate_text(baseline)}; its refinement keeps that rate"
    if fixed and lost:
        sentence = f"{against} when the stroke comes {listed(fixed)}, and falls below it when it comes {listed(lost)}."
    elif fixed:
        sentence = f"{against} at every timing measured: {listed(fixed)}."
    else:
        sentence = f"{against} at no timing measured: {listed(lost)}."
    first = recovery.timings[0].pixel_ar
    if all(row.pixel_ar == first for row in recovery.timings):
        without = recovery.baseline.get("pixel_ar")
        ar_against = f", against {percent(without.rate)} without it" if without is not None else ""
        sentence += (
            " The PixelCNN, which cannot revise a painted pixel, keeps the whole stroke and ends as the digit in "
            f"{rate_text(first)}{ar_against}, whatever the DDPM's timing."
        )
    return sentence


def region_sentence(recovery: Recovery) -> str:
    """What real digits put where the stroke goes: the measured fact instead of a claim that none do."""
    ink = recovery.region_ink
    if len(ink) != 10:
        return ""
    low, high = int(np.argmin(ink)), int(np.argmax(ink))
    classes = ", ".join(f"{digit}: {percent(share)}" for digit, share in enumerate(ink))
    return (
        f"Real digits do put ink where the stroke goes: on {recovery.region_split} the stroke's 16 pixels hold "
        f"{percent(ink[low])} of full ink on average for the {low}s up to {percent(ink[high])} for the {high}s "
        f"({percent(recovery.region_ink_all)} over all digits; per digit {classes}). The stroke paints all 16 at full "
        f"ink: heavier there than any digit's average ({percent(ink[high])}), not ink where no digit reaches."
    )
