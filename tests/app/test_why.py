"""/why: the plot's geometry on a tiny CSV, the overfitting onset, and the page's numbers checked against the
committed CSV with this test's own reading of it (never through app.why.data)."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.backends import fakes
from app.backends.interface import Backends
from app.main import create_app
from app.settings import REPO_ROOT, Settings
from app.why import data as why_data
from app.why import loss_plot
from app.why import page as why
from models.text import frontier

DATA = REPO_ROOT / "docs" / "data-efficiency.csv"
AR_LOG = REPO_ROOT / "models" / "checkpoints" / "text-ar" / "training.csv"
HEADER = "curve,step,epochs,train_loss,heldout_loss\n"


def fake_backends() -> Backends:
    return Backends(text=fakes.FakeText(), image=fakes.FakeImage(), race=fakes.FakeRace())


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(models="fake"), loader=lambda _s: fake_backends(), use_torch=False)
    with TestClient(app) as c:
        yield c


# ---------------------------------------------------------------------------------------------------------
# Geometry and facts on a tiny known CSV

TINY = (
    HEADER
    + "\n".join(
        [
            "a,1,1,4.0,3.5",  # training above held-out
            "a,2,2,3.5,3.4",  # still above
            "a,3,10,3.0,3.2",  # below: the onset
            "b,1,1,3.6,3.4",
            "b,2,10,3.8,3.6",  # never below
        ]
    )
    + "\n"
)


def write(tmp_path: Path, text: str, name: str = "curves.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_curves_keeps_file_order_and_values(tmp_path: Path) -> None:
    curves = why_data.read_curves(write(tmp_path, TINY))
    assert list(curves) == ["a", "b"]
    assert curves["a"][2] == why_data.CurvePoint(step=3, epochs=10.0, train_loss=3.0, heldout_loss=3.2)
    assert [p.step for p in curves["b"]] == [1, 2]


def test_overfit_onset_is_the_first_point_with_training_below_heldout(tmp_path: Path) -> None:
    curves = why_data.read_curves(write(tmp_path, TINY))
    assert why_data.overfit_onset(curves["a"]) == curves["a"][2]
    assert why_data.overfit_onset(curves["b"]) is None
    back_above = [*curves["a"], why_data.CurvePoint(4, 20.0, 3.5, 3.1), why_data.CurvePoint(5, 30.0, 2.0, 3.0)]
    assert why_data.overfit_onset(back_above) == curves["a"][2]  # the first one, not a later one
    assert [[p.step for p in span] for span in why_data.below_spans(back_above)] == [[3], [5]]
    assert why_data.overfit_onset([why_data.CurvePoint(1, 1.0, 3.0, 3.0)]) is None  # equal is not below


def test_ticks() -> None:
    assert loss_plot.log_ticks(0.724, 74.534) == [0.5, 1, 2, 5, 10, 20, 50, 100]
    assert loss_plot.log_ticks(1, 10) == [1, 2, 5, 10]
    assert loss_plot.linear_ticks(2.5913, 6.0885) == [2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5]
    assert loss_plot.linear_ticks(3.0, 4.0) == [3.0, 3.2, 3.4, 3.6, 3.8, 4.0]


def test_plot_maps_points_to_coordinates(tmp_path: Path) -> None:
    curves = why_data.read_curves(write(tmp_path, TINY))
    mark = loss_plot.Mark(10.0, 3.2, "1", ("onset",))
    view = loss_plot.plot_view(curves, [mark], aria_label="summary")
    left, right, top, bottom = view.left, view.right, view.top, view.bottom
    assert left < right and top < bottom and left >= 0 and right <= view.width and bottom <= view.height

    # x: epochs on a log axis from 1 to 10; y: loss on a linear axis from 3.0 (bottom) to 4.0 (top)
    def x(epochs: float) -> float:
        return left + math.log10(epochs) * (right - left)

    def y(loss: float) -> float:
        return bottom - (loss - 3.0) * (bottom - top)

    assert [t.value for t in view.x_ticks] == [1, 2, 5, 10] and [t.label for t in view.x_ticks] == ["1", "2", "5", "10"]
    assert view.y_ticks[0].value == 3.0 and view.y_ticks[-1].value == 4.0
    assert view.y_ticks[0].pos == pytest.approx(bottom) and view.y_ticks[-1].pos == pytest.approx(top)

    lines = {(line.curve, line.kind): line for line in view.lines}
    assert set(lines) == {("a", "heldout"), ("a", "train"), ("b", "heldout"), ("b", "train")}
    assert lines[("a", "train")].points[0] == (left, top)  # epoch 1, loss 4.0
    assert lines[("a", "train")].points[2] == (right, bottom)  # epoch 10, loss 3.0
    expected = [(x(1), y(3.5)), (x(2), y(3.4)), (x(10), y(3.2))]
    for got, want in zip(lines[("a", "heldout")].points, expected, strict=True):
        assert got == pytest.approx(want, abs=0.051)
    # the path's d attribute draws exactly those points
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", lines[("a", "heldout")].d)]
    assert numbers == [v for point in lines[("a", "heldout")].points for v in point]
    assert lines[("a", "heldout")].d.startswith("M")
    assert lines[("b", "heldout")].index == 1 and view.legend == [("a", 0), ("b", 1)]

    (placed,) = view.marks
    assert (placed.x, placed.y) == pytest.approx((right, y(3.2)), abs=0.051)
    assert placed.badge_x == placed.x and abs(placed.badge_y - placed.y) == 40
    assert view.aria_label == "summary"


def test_marks_at_nearby_points_get_badges_that_do_not_overlap(tmp_path: Path) -> None:
    curves = why_data.read_curves(write(tmp_path, TINY))
    close = [loss_plot.Mark(9.0, 3.5, "1", ()), loss_plot.Mark(10.0, 3.5, "2", ()), loss_plot.Mark(9.5, 3.52, "3", ())]
    view = loss_plot.plot_view(curves, close)
    badges = [(m.badge_x, m.badge_y) for m in view.marks]
    for i, (ax, ay) in enumerate(badges):
        assert view.top + 16 <= ay <= view.bottom - 16
        for bx, by in badges[i + 1 :]:
            assert math.hypot(ax - bx, ay - by) >= 38, badges  # two badges of radius 17 with their outlines
    assert view.marks[0].badge_y == view.marks[0].y - 40  # the first still sits just above its point


def test_facts_on_a_tiny_csv(tmp_path: Path) -> None:
    text = (
        HEADER
        + "\n".join(
            [
                "autoregressive,100,1,5.0,4.0",
                "autoregressive,200,2,3.9,4.0",  # onset
                "autoregressive,300,3,3.5,3.8",
                '"diffusion, from AR step 200",100,1,6.0,5.0',
                '"diffusion, from AR step 200",200,5,4.0,4.5',  # below
                '"diffusion, from AR step 200",300,12,4.6,4.4',
                '"diffusion, from AR step 200",400,20,4.5,4.3',
            ]
        )
        + "\n"
    )
    curves = why_data.read_curves(write(tmp_path, text))
    facts = why_data.why_facts(curves, "x.csv", 1000.0, "log.csv")
    assert facts.ar is not None and facts.ar.onset and facts.ar.onset_epochs is not None
    assert facts.ar.onset_epochs.value == 2 and facts.ar.fall_after_onset is not None
    assert facts.ar.fall_after_onset.value == pytest.approx(0.2) and facts.ar.end_gap.value == pytest.approx(0.3)
    assert facts.ar.falling_at_end
    (d,) = facts.from_ar
    assert d.init_step is not None and d.init_epochs is not None
    assert (d.init_step.value, d.init_epochs.value) == (200, 2)  # the twin's epochs at step 200
    assert d.recent_from_epochs.value == 5  # the latest point at least 10 epochs before the last (20)
    assert d.recent_fall.value == pytest.approx(0.2) and d.recent_span.value == 15
    assert d.train_above_at_end and d.end_gap.value == pytest.approx(0.2) and d.last_is_best
    assert [(a.value, b.value, n.value) for a, b, n in d.below] == [(5, 5, 1)]
    assert facts.scratch is None
    assert facts.tokens_per_epoch is not None and facts.tokens_per_epoch.text == "1k"
    assert not d.stage_ends and d.last_epochs.key == "from_ar.1.last.epochs"


def test_each_diffusion_curve_from_the_twin_gets_its_own_facts(tmp_path: Path) -> None:
    text = (
        HEADER
        + "\n".join(
            [
                "autoregressive,100,1,5.0,4.0",
                "autoregressive,200,2,3.9,4.0",
                '"diffusion, from AR step 100",100,1,6.0,5.0',
                '"diffusion, from AR step 100",200,30,4.6,4.4',
                '"diffusion, from AR step 200 (stage ends)",300,10,4.5,4.3',
                '"diffusion, from AR step 200 (stage ends)",600,20,4.4,4.1',
                '"diffusion, from AR step 200 (a typo)",600,20,4.4,4.1',  # not a from-AR curve: no facts
            ]
        )
        + "\n"
    )
    facts = why_data.why_facts(why_data.read_curves(write(tmp_path, text)), "x.csv")
    first, second = facts.from_ar
    assert (first.index, first.stage_ends, first.init_step.value if first.init_step else None) == (1, False, 100)
    assert (second.index, second.stage_ends, second.init_epochs.value if second.init_epochs else None) == (2, True, 2)
    assert second.last_heldout.key == "from_ar.2.last.heldout_loss" and second.recent_fall.value == pytest.approx(0.2)
    assert facts.furthest_diffusion_epochs is first.last_epochs  # 30 epochs against 20
    assert second.recent_from_epochs.value == 10  # a stage-ends curve: the change over its last stage
    marks = why.plot_marks(facts)
    assert [m.label for m in marks] == ["1", "2", "3"]
    first_part = marks[2].parts[0]
    assert isinstance(first_part, str) and first_part.startswith("diffusion, from AR step 200")


def test_a_stage_ends_curve_is_drawn_with_a_dot_at_each_point(tmp_path: Path) -> None:
    name = '"diffusion, from AR step 2 (stage ends)"'
    text = HEADER + f"{name},1,1,4.0,3.5\n{name},2,9,3.9,3.3\nb,1,1,3,3\nb,2,9,3,3\n"
    path = write(tmp_path, text)
    view = why.build_view(path, tmp_path / "missing.csv")
    assert view.plot is not None
    dotted = {(line.curve, line.kind) for line in view.plot.lines if line.dotted}
    assert dotted == {("diffusion, from AR step 2 (stage ends)", "heldout")}


def test_tokens_per_epoch(tmp_path: Path) -> None:
    log = write(tmp_path, "step,tokens_seen,epochs\n1,100,0.5\n2,200,1.0\n", "log.csv")
    assert why_data.tokens_per_epoch(log) == 200
    assert why_data.tokens_per_epoch(tmp_path / "missing.csv") is None
    assert why_data.tokens_per_epoch(write(tmp_path, "step,epochs\n1,1\n", "bad.csv")) is None


@pytest.mark.parametrize(
    "text",
    [
        "curve,step,epochs\na,1,1\n",  # missing columns
        HEADER + "a,1,one,3.0,3.0\n",  # not a number
        HEADER + "a,1,1,nan,3.0\n",  # not finite
        HEADER + "a,1,0,3.0,3.0\n",  # epochs must be positive (log axis)
        HEADER,  # no rows
        "",  # empty file
    ],
)
def test_read_curves_refuses_malformed_files(tmp_path: Path, text: str) -> None:
    with pytest.raises(why_data.CurveDataError):
        why_data.read_curves(write(tmp_path, text))


# ---------------------------------------------------------------------------------------------------------
# The page


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.h1 = 0
        self.iframes: list[dict[str, str]] = []
        self.links: list[str] = []
        self.numbers: list[dict[str, str]] = []  # attributes + "text"
        self.paths: list[dict[str, str]] = []
        self.svgs: list[dict[str, str]] = []
        self.inline_scripts = self.styles = 0
        self.in_details_table = 0
        self.text: list[str] = []
        self.dot_groups: list[int] = []  # circles in each <g class="dots">
        self._open_numbers: list[tuple[int, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "h1":
            self.h1 += 1
        if tag == "iframe":
            self.iframes.append(values)
        if tag == "a":
            self.links.append(values.get("href", ""))
        if tag == "svg":
            self.svgs.append(values)
        if tag == "path":
            self.paths.append(values)
        if tag == "g" and "dots" in values.get("class", "").split():
            self.dot_groups.append(0)
        if tag == "circle" and self.stack and "dots" in self.stack[-1][1].get("class", "").split():
            self.dot_groups[-1] += 1
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1
        if "style" in values or tag == "style":
            self.styles += 1
        if tag == "table" and any(t == "details" for t, _ in self.stack):
            self.in_details_table += 1
        if tag not in ("path", "line", "circle", "link", "meta", "input", "br", "img"):
            self.stack.append((tag, values))
            if "data-value" in values:
                self._open_numbers.append((len(self.stack), {**values, "text": ""}))

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1][0] == tag:
            if self._open_numbers and self._open_numbers[-1][0] == len(self.stack):
                self.numbers.append(self._open_numbers.pop()[1])
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for _, attrs in self._open_numbers:
            attrs["text"] += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def expected_numbers() -> dict[str, tuple[float, str]]:
    """Every number the page should show, computed here from the committed CSVs: key -> (value, source)."""
    src, log_src = "docs/data-efficiency.csv", "models/checkpoints/text-ar/training.csv"
    with DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    curves: dict[str, list[dict[str, float]]] = {}
    for r in rows:
        curves.setdefault(r["curve"], []).append(
            {
                "step": int(r["step"]),
                "epochs": float(r["epochs"]),
                "train": float(r["train_loss"]),
                "held": float(r["heldout_loss"]),
            }
        )
    out: dict[str, tuple[float, str]] = {}

    def put(key: str, value: float, source: str = src) -> None:
        out[key] = (value, source)

    for name, points in curves.items():
        best = min(points, key=lambda p: p["held"])
        for which, p in (("first", points[0]), ("best", best), ("last", points[-1])):
            for column, field in (("step", "step"), ("epochs", "epochs"), ("train_loss", "train"), ("heldout_loss", "held")):
                put(f"summary|{name}|{which}|{column}", p[field])
        for p in points:
            for column, field in (("step", "step"), ("epochs", "epochs"), ("train_loss", "train"), ("heldout_loss", "held")):
                put(f"points|{name}|{p['step']}|{column}", p[field])

    ar = curves["autoregressive"]
    onset = next(p for p in ar if p["train"] < p["held"])
    last = ar[-1]
    put("ar.onset.epochs", onset["epochs"])
    put("ar.onset.train_loss", onset["train"])
    put("ar.onset.heldout_loss", onset["held"])
    put("ar.onset.fall_to_last", onset["held"] - last["held"])
    put("ar.last.epochs", last["epochs"])
    put("ar.last.heldout_loss", last["held"])
    put("ar.last.gap", last["held"] - last["train"])

    names = list(curves)
    for name in [n for n in names if n.startswith("diffusion, from AR step")]:
        key = f"from_ar.{names.index(name)}"  # a block of facts per curve, by its place in the CSV
        d = curves[name]
        last = d[-1]
        earlier = [p for p in d if p["epochs"] <= last["epochs"] - 10]
        # a stage-ends curve's "recent" change is its last stage; a logged curve's, the last ten epochs or so
        start = d[-2] if name.endswith("(stage ends)") else (earlier[-1] if earlier else d[0])
        put(f"{key}.last.epochs", last["epochs"])
        put(f"{key}.last.heldout_loss", last["held"])
        put(f"{key}.last.train_loss", last["train"])
        put(f"{key}.last.gap", last["train"] - last["held"])
        put(f"{key}.recent.from_epochs", start["epochs"])
        put(f"{key}.recent.from_heldout_loss", start["held"])
        put(f"{key}.recent.span_epochs", last["epochs"] - start["epochs"])
        put(f"{key}.recent.fall", start["held"] - last["held"])
        init = re.match(r"diffusion, from AR step (\d+)", name)
        assert init is not None, name
        step = int(init.group(1))
        put(f"{key}.init.step", step)
        put(f"{key}.init.epochs", next(p["epochs"] for p in ar if p["step"] == step))
        spans: list[list[dict[str, float]]] = []
        for i, p in enumerate(d):
            if p["train"] < p["held"]:
                if i and d[i - 1]["train"] < d[i - 1]["held"]:
                    spans[-1].append(p)
                else:
                    spans.append([p])
        for i, span in enumerate(spans):
            put(f"{key}.below.{i}.from_epochs", span[0]["epochs"])
            put(f"{key}.below.{i}.to_epochs", span[-1]["epochs"])
            put(f"{key}.below.{i}.points", len(span))
        if min(d, key=lambda p: p["held"])["held"] != last["held"]:
            best = min(d, key=lambda p: p["held"])
            put(f"{key}.best.epochs", best["epochs"])
            put(f"{key}.best.heldout_loss", best["held"])

    s = curves["diffusion, from scratch"]
    last = s[-1]
    start = [p for p in s if p["epochs"] <= last["epochs"] - 10][-1]
    put("scratch.last.epochs", last["epochs"])
    put("scratch.last.heldout_loss", last["held"])
    put("scratch.last.train_loss", last["train"])
    if start["held"] > last["held"]:
        put("scratch.recent.fall", start["held"] - last["held"])
        put("scratch.recent.from_epochs", start["epochs"])

    with AR_LOG.open(newline="") as f:
        epochs, tokens = max((float(r["epochs"]), float(r["tokens_seen"])) for r in csv.DictReader(f))
    put("tokens_per_epoch", tokens / epochs, log_src)
    return out


def shown_value(text: str) -> tuple[float, float]:
    """The number an element displays and half a unit of its last digit (the rounding it may carry)."""
    match = re.fullmatch(r"\s*(-?\d+(?:\.(\d+))?)(k?)\s*", text)
    assert match, f"not a number: {text!r}"
    scale = 1000 if match.group(3) else 1
    decimals = len(match.group(2) or "")
    return float(match.group(1)) * scale, 0.5 * 10.0**-decimals * scale


def test_page_numbers_match_the_committed_csv(client: TestClient) -> None:
    response = client.get("/why")
    assert response.status_code == 200
    page = parse(response.text)
    expected = expected_numbers()
    shown = {n["data-fact"] for n in page.numbers}
    assert shown == set(expected), (sorted(set(expected) - shown), sorted(shown - set(expected)))
    for n in page.numbers:
        value, source = expected[n["data-fact"]]
        assert float(n["data-value"]) == pytest.approx(value, rel=1e-9, abs=1e-9), n
        assert n["data-source"] == source, n
        displayed, tolerance = shown_value(n["text"])
        assert abs(displayed - value) <= tolerance + 1e-9, n


def test_page_structure(client: TestClient) -> None:
    html = client.get("/why").text
    page = parse(html)
    assert page.h1 == 1
    assert page.inline_scripts == 0 and page.styles == 0  # CSP: no inline script, no style attributes
    assert re.search(r'<link rel="stylesheet" href="/static/why.css\?v=[0-9a-f]{12}">', html)

    frames = {f["src"]: f for f in page.iframes}
    rows = frontier.read_frontier()  # the demos run the settings the committed frontier supports
    remask = why.remask_demo_row(rows)
    assert remask is not None and remask.judge_ppl == min(r.judge_ppl for r in rows if r.remask != "none")
    race_steps = round(why.RACE_DEMO_LENGTH * frontier.default_race_steps(rows) / frontier.LENGTH)
    assert set(frames) == {
        f"/embed/race?length={why.RACE_DEMO_LENGTH}&steps={race_steps}&autoplay=1&result=1",
        f"/embed/text?{why.remask_demo_query(remask)}",
    }
    assert f"remask={remask.remask}" in why.remask_demo_query(remask) and f"steps={remask.steps}&" in why.remask_demo_query(
        remask
    )
    assert all(f.get("title") and f.get("loading") == "lazy" for f in frames.values())
    assert "/race" in page.links

    (svg,) = [s for s in page.svgs if "curves" in s.get("class", "")]
    assert svg["role"] == "img" and svg["aria-label"] and svg["viewbox"].startswith("0 0 ")
    with DATA.open(newline="") as f:
        names = list(dict.fromkeys(r["curve"] for r in csv.DictReader(f)))
    plotted = [p for p in page.paths if p.get("data-curve")]
    for name in names:
        solid = [p for p in plotted if p["data-curve"] == name and "stroke-dasharray" not in p]
        dashed = [p for p in plotted if p["data-curve"] == name and "stroke-dasharray" in p]
        assert len(solid) == 1 and len(dashed) == 1, name
        assert solid[0]["data-kind"] == "heldout" and dashed[0]["data-kind"] == "train"
    assert len(plotted) == 2 * len(names)
    with DATA.open(newline="") as f:
        curve_of_row = [r["curve"] for r in csv.DictReader(f)]
    stage_points = [curve_of_row.count(n) for n in names if n.endswith("(stage ends)")]
    assert page.dot_groups == stage_points  # a dot for each point of each stage-ends curve
    assert page.in_details_table >= 1  # the text alternative
    text = " ".join("".join(page.text).split())
    assert "source: docs/data-efficiency.csv" in text
    assert "NELBO" in text and "Muennighoff" in text and "Prabhudesai" in text


@pytest.mark.parametrize("content", [None, "curve,step\nx,1\n", HEADER + "a,1,x,1,1\n", "\x00\x01 not a csv"])
def test_page_renders_without_the_data(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    path = tmp_path / "data-efficiency.csv"
    if content is not None:
        path.write_text(content)
    monkeypatch.setattr(why, "DATA_CSV", path)
    response = client.get("/why")
    assert response.status_code == 200
    page = parse(response.text)
    assert "The plot is unavailable" in response.text
    assert page.h1 == 1 and len(page.iframes) == 2
    assert not [s for s in page.svgs if "curves" in s.get("class", "")] and not page.numbers


def page_for(client: TestClient, monkeypatch: pytest.MonkeyPatch, path: Path) -> Page:
    monkeypatch.setattr(why, "DATA_CSV", path)
    response = client.get("/why")
    assert response.status_code == 200 and "The plot is unavailable" not in response.text
    return parse(response.text)


def test_the_page_dots_a_stage_ends_curve_and_explains_a_dip_only_where_its_cause_is_known(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        "autoregressive,100,1,5.0,4.0",
        "autoregressive,200,2,3.9,4.0",
        '"diffusion, from AR step 100 (stage ends)",10,5,4.0,4.4',  # below held-out: a dip of unknown cause
        '"diffusion, from AR step 100 (stage ends)",20,9,4.5,4.3',
        '"diffusion, from AR step 100 (stage ends)",30,14,4.4,4.2',
        '"diffusion, from scratch",100,40,5.0,4.9',  # trained longest
    ]
    html_text = "\n".join(rows)
    page = page_for(client, monkeypatch, write(tmp_path, HEADER + html_text + "\n"))
    assert page.dot_groups == [3]  # one group, a dot per stage
    text = " ".join("".join(page.text).split())
    assert "attributes this to" not in text and "between epochs 5.0 and 5.0 (1 points)." in text
    assert "diffusion runs that reached at most epoch 40.0" in text
    assert "Over its last stage, 5.0 epochs (from epoch 9.0" in text


def test_the_page_renders_with_no_curve_from_the_twin(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = page_for(client, monkeypatch, write(tmp_path, HEADER + "autoregressive,100,1,5.0,4.0\nautoregressive,200,2,3.9,4.0\n"))
    text = " ".join("".join(page.text).split())
    assert page.dot_groups == [] and "initialised from the twin" not in text and "diffusion runs that reached further" in text
