"""The frontier on the pages: every number shown under the race and on /why is the committed CSV's, the steps
menu carries each option's measured quality, and the sentences follow the file (a changed file changes them)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.why import frontier_view
from app.why import page as why
from models.text import frontier

CELL = re.compile(r'<tr data-name="([^"]+)">(.*?)</tr>', re.S)
NUMBER = re.compile(r'data-column="(\w+)" data-number="([^"]+)"')
POINT = re.compile(r'data-name="([^"]+)" data-x="([^"]+)" data-y="([^"]+)"')


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models="fake", prewarm=False))) as c:
        yield c


def committed() -> dict[str, dict[str, str]]:
    with frontier.FRONTIER_CSV.open(newline="") as f:
        return {r["name"]: r for r in csv.DictReader(f)}


@pytest.mark.parametrize("path", ["/race", "/why"])
def test_every_frontier_number_on_the_page_is_the_files(client: TestClient, path: str) -> None:
    html = client.get(path).text
    rows = committed()
    shown = {name: dict(NUMBER.findall(cells)) for name, cells in CELL.findall(html)}
    assert set(shown) == set(rows)
    for name, cells in shown.items():
        assert set(cells) == {"tokens_per_pass", "judge_ppl", "real_words", "distinct2", "in_order", "ms_per_sample"}
        for column, value in cells.items():
            assert float(value) == float(rows[name][column]), (name, column)
    points = {name: (float(x), float(y)) for name, x, y in POINT.findall(html)}
    assert points == {n: (float(r["tokens_per_pass"]), float(r["judge_ppl"])) for n, r in rows.items()}
    for sentence in frontier_view.sentences(frontier.read_frontier()):
        assert sentence.replace("'", "&#39;") in html
    assert "Literature, not our measurement" in html


def test_the_race_steps_menu_shows_each_options_measured_quality(client: TestClient) -> None:
    html = client.get("/race").text
    twin = next(r for r in committed().values() if r["model"] == "ar")
    for steps, row in frontier.race_rows(frontier.read_frontier()).items():
        label = f"{steps}: judge perplexity {row.judge_ppl:.0f} (twin {float(twin['judge_ppl']):.0f})"
        assert re.search(rf'<option value="{steps}"( selected)?>{re.escape(label)}</option>', html), label
    default = frontier.race_default_steps()
    assert f'<option value="{default}" selected>' in html


def test_the_sentences_follow_the_file(tmp_path: Path) -> None:
    rows = frontier.read_frontier()
    worse = [replace(r, judge_ppl=r.judge_ppl * 10) if r.remask != "none" else r for r in rows]
    assert any("did not help in any measured setting" in s for s in frontier_view.sentences(worse))
    better = [
        replace(r, judge_ppl=1.0) if r.remask == "loop" and r.steps == 4 * frontier.LENGTH else worse[i]
        for i, r in enumerate(rows)
    ]
    assert any(
        "1 of 6 remasking settings read better than without it; the best, loop with 4x the passes, at 1.0" in s
        for s in frontier_view.sentences(better)
    )
    path = tmp_path / "f.csv"
    frontier.write_frontier(better, path)
    view = frontier_view.build_view(path)
    assert view.sentences == frontier_view.sentences(better)
    assert why.remask_demo_row(better) == next(r for r in better if r.judge_ppl == 1.0)


def test_without_the_file_the_pages_say_so_and_the_race_defaults_to_one_token_a_pass(tmp_path: Path) -> None:
    assert frontier_view.page_view(tmp_path / "missing.csv") is None
    assert frontier.race_default_steps(tmp_path / "missing.csv") == frontier.LENGTH
