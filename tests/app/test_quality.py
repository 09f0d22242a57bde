"""Quality next to speed: the judge's figures on finished runs (committed checkpoints), race verdicts that carry
both lanes' quality, and the race's default steps chosen from the committed frontier by the documented rule."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.backends.fakes import FakeImage
from app.backends.interface import Backends
from app.backends.real import RealRace, RealText
from app.render.race import race_verdict
from models.checkpoints import CHECKPOINT_ROOT
from models.frames import FIXED, NEW, TextFrame, TextQuality, TextToken
from models.text import frontier
from models.text.decoding import RaceRequest, TextRequest
from models.text.judge import Judge, Segment, load_judge
from models.text.model import TextModel, load_text_model
from models.text.race import AUTOREGRESSIVE, DIFFUSION, Lane, RaceFrame
from tests.app.live import Live, exchange, live_server, run


def _frame(quality: TextQuality | None, passes: int) -> TextFrame:
    tokens = (TextToken(FIXED, 5, "Once", 1.0), TextToken(NEW, 6, " upon", 0.5))
    return TextFrame(step=passes, total=passes, tokens=tokens, forward_passes=passes, quality=quality)


def _race(diffusion: TextQuality | None, ar: TextQuality | None) -> RaceFrame:
    lanes = (
        Lane(DIFFUSION, _frame(diffusion, 16), wall_ms=200.0, finished=True),
        Lane(AUTOREGRESSIVE, _frame(ar, 64), wall_ms=260.0, finished=True),
    )
    return RaceFrame(step=64, total=64, lanes=lanes)


def test_the_verdict_names_passes_time_and_both_lanes_quality() -> None:
    twin = TextQuality(judge_ppl=14.1, real_words=0.957, words=50)
    gibberish = TextQuality(judge_ppl=507.9, real_words=0.873, words=50)
    verdict = race_verdict(_race(gibberish, twin))
    assert "4.0x fewer forward passes" in verdict and "1.3x sooner" in verdict
    assert "36.0x worse by the judge" in verdict
    assert "judge perplexity 507.9 per word, 87% real words" in verdict
    assert "the twin's judge perplexity 14.1 per word, 96% real words" in verdict
    fluent = replace(gibberish, judge_ppl=14.9, real_words=0.96)
    changed = race_verdict(_race(fluent, twin))
    assert changed != verdict and "about as well" in changed and "14.9" in changed
    assert "a little worse" in race_verdict(_race(replace(gibberish, judge_ppl=20.0), twin))
    equal = _race(fluent, twin)
    equal = replace(
        equal, lanes=(replace(equal.lanes[0], frame=replace(equal.lanes[0].frame, forward_passes=64)), equal.lanes[1])
    )
    assert race_verdict(equal).startswith(
        "Both lanes used 64 forward passes (one token a pass); diffusion finished 1.3x sooner in wall time"
    )
    unjudged = race_verdict(_race(None, None))
    assert "no judge scored either text" in unjudged and "fewer forward passes" in unjudged


def _committed_rows() -> list[dict[str, str]]:
    with frontier.FRONTIER_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_race_default_is_the_documented_rule_applied_to_the_committed_frontier() -> None:
    rows = _committed_rows()
    twin = next(float(r["judge_ppl"]) for r in rows if r["model"] == "ar")
    plain = {
        int(r["steps"]): float(r["judge_ppl"])
        for r in rows
        if r["model"] == "diffusion" and r["remask"] == "none" and float(r["threshold"]) == 0
    }
    assert sorted(plain) == sorted(frontier.RACE_STEP_CHOICES) and all(int(r["samples"]) >= 128 for r in rows)
    within = [steps for steps, ppl in plain.items() if ppl <= 1.5 * twin]
    expected = min(within) if within else min(plain, key=plain.__getitem__)
    assert RaceRequest().steps == expected == frontier.race_default_steps()


def test_the_rule_picks_the_fewest_steps_within_bounds_or_the_best_reading(tmp_path: Path) -> None:
    rows = frontier.read_frontier()
    twin = frontier.twin_row(rows)
    reading = [replace(r, judge_ppl=twin.judge_ppl * (1.2 if r.steps >= 16 else 3)) if r.plain_diffusion else r for r in rows]
    assert frontier.default_race_steps(reading) == 16
    none = [replace(r, judge_ppl=twin.judge_ppl * (2 + r.steps)) if r.plain_diffusion else r for r in rows]
    assert frontier.default_race_steps(none) == 8  # none within 1.5x: the best-reading steps
    path = tmp_path / "frontier.csv"
    frontier.write_frontier(reading, path)
    assert frontier.race_default_steps(path) == 16 and frontier.read_frontier(path) == reading
    assert frontier.race_default_steps(tmp_path / "missing.csv") == frontier.LENGTH


# ---------------------------------------------------------------------------------------------------------
# On the committed checkpoints


Twins = tuple[TextModel, TextModel]  # the diffusion model and its autoregressive twin


@pytest.fixture(scope="module")
def judge() -> Judge:
    return load_judge(CHECKPOINT_ROOT / "text-judge")


@pytest.fixture(scope="module")
def models() -> Twins:
    return load_text_model(CHECKPOINT_ROOT / "text-diffusion"), load_text_model(CHECKPOINT_ROOT / "text-ar")


@pytest.fixture(scope="module")
def live(models: Twins, judge: Judge) -> Iterator[Live]:
    diffusion, autoregressive = models
    backends = Backends(text=RealText(diffusion, judge), image=FakeImage(), race=RealRace(diffusion, autoregressive, judge))
    with live_server(backends=backends, use_torch=True, cache_bytes=0) as server:
        yield server


def _direct(judge: Judge, model: TextModel, frame: TextFrame) -> TextQuality:
    """The judge's figures recomputed here from the frame's token ids: prompt read, generated text scored."""
    decode = model.tokenizer.decode
    ids = [t.token_id for t in frame.tokens]
    assert None not in ids, "a finished frame has every position decided"
    given = [t.token_id for t in frame.tokens if t.state == FIXED and t.token_id is not None]
    written = [t.token_id for t in frame.tokens if t.state != FIXED and t.token_id is not None]
    return judge.score(
        [Segment(decode(given, skip_special_tokens=False), False), Segment(decode(written, skip_special_tokens=False), True)]
    )


@pytest.mark.slow
@pytest.mark.real_model
def test_a_finished_text_run_reports_the_judges_figures_of_its_final_text(live: Live, judge: Judge, models: Twins) -> None:
    request = {"prompt": "Once upon a time", "length": 24, "steps": 24, "seed": 4}
    result = run(exchange(live.ws("text"), request))
    assert result.code == 1000 and result.types[-1] == "done"
    *_, last = RealText(models[0], judge).sample(TextRequest(**request))
    assert last.quality is not None and last.quality == _direct(judge, models[0], last)
    assert result.last["quality"] == last.quality.as_json()
    assert result.last["quality"]["judge_ppl"] > 1 and 0 < result.last["quality"]["real_words"] <= 1
    html = run(exchange(live.ws("text", fmt="html"), request)).last["content"]
    assert f"judge perplexity {last.quality.judge_ppl:.1f} per word" in html and "Judge perplexity: how surprised" in html


@pytest.mark.slow
@pytest.mark.real_model
def test_a_remasking_run_sets_the_same_seed_without_remasking_before_it(live: Live, judge: Judge, models: Twins) -> None:
    request = {"prompt": "Once upon a time", "length": 16, "steps": 32, "remask": "loop", "seed": 1}
    done = run(exchange(live.ws("text", fmt="html"), request)).last
    *_, plain = RealText(models[0], None).sample(TextRequest(**{**request, "remask": "none", "steps": 16}))
    assert done["without_remasking"] == _direct(judge, models[0], plain).as_json()
    assert f"judge perplexity {done['without_remasking']['judge_ppl']:.1f} without it" in done["content"]
    assert f"→ {done['quality']['judge_ppl']:.1f} with it" in done["content"]


@pytest.mark.slow
@pytest.mark.real_model
def test_each_race_lane_reports_its_quality_and_the_verdict_carries_both(live: Live, judge: Judge, models: Twins) -> None:
    request = {"prompt": "Once upon a time", "length": 16, "steps": 4, "seed": 3}
    done = run(exchange(live.ws("race", fmt="html"), request)).last
    *_, last = RealRace(models[0], models[1], judge).sample(RaceRequest(**request))
    for lane in last.lanes:
        assert lane.frame.quality == _direct(judge, models[0] if lane.name == DIFFUSION else models[1], lane.frame)
    lanes = {lane["lane"]: lane for lane in done["lanes"]}
    for lane in last.lanes:
        quality = lane.frame.quality
        assert quality is not None
        assert lanes[lane.name]["quality"] == quality.as_json()
        assert f"judge perplexity {quality.judge_ppl:.1f} per word" in done["content"]
    assert "by the judge" in done["content"] and "fewer forward passes" in done["content"]


def test_a_lane_that_finished_first_shows_its_judged_figures_at_the_last_tick() -> None:
    """The diffusion lane finishes before the twin; the judge reads both at the last tick: both badges carry it."""
    from app.render.race import RaceRun

    figures = TextQuality(judge_ppl=37.7, real_words=0.95, words=40)
    twin = TextQuality(judge_ppl=44.6, real_words=0.97, words=40)
    run_ = RaceRun(RaceRequest())
    early = RaceFrame(
        step=16,
        total=64,
        lanes=(
            Lane(DIFFUSION, _frame(None, 16), wall_ms=200.0, finished=True),
            Lane(AUTOREGRESSIVE, replace(_frame(None, 16), total=64), wall_ms=60.0, finished=False),
        ),
    )
    run_.frame(early, 0.0)
    run_.frame(replace(early, step=17), 0.0)  # the finished lane shown again, settled, before anyone is judged
    last = run_.frame(_race(figures, twin), 0.0).html
    assert "finished: 16 passes, 0.20 s; judge perplexity 37.7 per word" in last
    assert "finished: 64 passes, 0.26 s; judge perplexity 44.6 per word" in last
