"""The image race on the web (/race/image, /ws/race/image): the protocol, the pages, the renderer, the loud
untrained fallback, and one race on the committed DDPM over a real socket."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.backends.fakes import FakeImage, FakeImageRace, FakeRace, FakeText
from app.backends.interface import Backends
from app.backends.load import load_backends
from app.backends.real import RealImage, RealImageRace
from app.demos.protocol import from_query, parse_request
from app.engine.interface import run_key
from app.errors import RequestError
from app.main import create_app
from app.render.image_race import ImageRaceRun, rate_text
from app.render.image_race_page import recovery_summary
from app.settings import Settings
from app.web.query import to_query
from models.image.race_frames import AUTOREGRESSIVE, DIFFUSION, MISTAKE_PIXELS, ImageLane, ImageRaceFrame
from models.image.race_recovery import Outcome, Recovery, TimingRow, load_recovery, recovery_to_dict
from models.image.request import MISTAKE_TIMINGS, ImageRaceRequest
from tests.app.live import Live, exchange, live_server, run

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
SIZE = 28


def fake_backends(step_seconds: float = 0.0) -> Backends:
    return Backends(
        text=FakeText(step_seconds),
        image=FakeImage(step_seconds),
        race=FakeRace(step_seconds),
        image_race=FakeImageRace(step_seconds),
    )


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with live_server(backends=fake_backends()) as server:
        yield server


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    backends = fake_backends()
    app = create_app(Settings(models="fake"), loader=lambda _s: backends, use_torch=False)
    with TestClient(app) as c:
        yield c


def lanes(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lane["lane"]: lane for lane in message["lanes"]}


def png_size(data: str) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(data))).size


# ---------------------------------------------------------------------------------------------------------
# The socket, with the fake


def test_a_json_race_streams_both_lanes_then_done(live: Live) -> None:
    result = run(exchange(live.ws("race/image"), {"digit": 4, "steps": 20, "seed": 3}))
    assert result.code == 1000 and result.types[-1] == "done" and set(result.types) == {"frame", "done"}
    frames = result.frames
    assert [f["step"] for f in frames] == list(range(len(frames))) and all(f["total"] == len(frames) - 1 for f in frames)
    clocks = [f["clock"] for f in frames]
    assert clocks == sorted(clocks) and clocks[0] == 0 and clocks[-1] == SIZE * SIZE
    for frame in frames:
        ar, diffusion = lanes(frame)["ar"], lanes(frame)["diffusion"]
        assert ar["forward_passes"] == min(frame["clock"], SIZE * SIZE) and ar["total_passes"] == SIZE * SIZE
        assert diffusion["forward_passes"] == min(frame["clock"], 20) and diffusion["total_passes"] == 20
        assert ar["cursor"] == (ar["forward_passes"] if ar["forward_passes"] < SIZE * SIZE else None)  # no mistake
        assert diffusion["cursor"] is None and ar["x0_png"] is None
        # the fake counts its wall time (AR_MS a pixel, DDPM_MS a DDPM pass), so it follows each lane's passes exactly
        assert ar["wall_ms"] == round(ar["forward_passes"] * FakeImageRace.AR_MS, 1)
        assert diffusion["wall_ms"] == round(diffusion["forward_passes"] * FakeImageRace.DDPM_MS, 1)
        assert ar["finished"] == (ar["forward_passes"] == SIZE * SIZE)
        assert png_size(ar["image_png"]) == png_size(diffusion["image_png"]) == (SIZE, SIZE)
        assert (diffusion["x0_png"] is None) == (frame["step"] == 0)
        assert ar["forced"] == diffusion["forced"] == []
    for name in ("ar", "diffusion"):
        walls = [lanes(f)[name]["wall_ms"] for f in frames]
        passes = [lanes(f)[name]["forward_passes"] for f in frames]
        assert walls == sorted(walls) and walls[0] == 0  # it grows over the frames, from nothing before a pass
        assert all(wall > 0 for wall, done in zip(walls, passes, strict=True) if done)  # and once a lane has done a pass
    done = result.last
    assert done["digit"] == 4 and [lane["lane"] for lane in done["lanes"]] == ["ar", "diffusion"]
    by_lane = lanes(done)
    assert by_lane["ar"]["forward_passes"] == SIZE * SIZE and by_lane["diffusion"]["forward_passes"] == 20
    for lane in by_lane.values():
        assert lane["wall_ms"] > 0 and png_size(lane["png"]) == (SIZE, SIZE)
        assert lane["verdict"]["digit"] == 4 and 0 < lane["verdict"]["probability"] <= 1
        assert "mistake" not in lane  # only with the forced mistake


def test_the_html_race_draws_both_lanes_the_cursor_and_a_measured_verdict(live: Live) -> None:
    result = run(exchange(live.ws("race/image", fmt="html"), {"digit": 1, "steps": 20, "seed": 2}))
    assert result.code == 1000
    middle = result.frames[10]["content"]
    assert 'class="frame image-race-frame"' in middle and "style=" not in middle  # the CSP: no style attributes
    assert middle.count('<section class="lane lane-') == 2 and middle.count('<image href="data:image/png;base64,') == 3
    cursor = re.search(r'<rect class="cursor" x="(\d+)" y="(\d+)" width="1" height="1"/>', middle)
    assert cursor is not None and (int(cursor[2]), int(cursor[1])) == divmod(10, SIZE)  # pass 10: row 0, column 10
    assert "<b>10/784</b> forward passes" in middle and "<b>10/20</b> forward passes" in middle
    assert "wall time" in middle and "classifier says" in middle
    last = result.frames[-1]["content"]
    assert last.count('class="finish"') == 2 and "finished: 784 passes, 0.39 s" in last and "<rect" not in last
    done = result.last["content"]
    assert 'hx-swap-oob="true"' in done and "Diffusion used 39.2x fewer forward passes" in done
    assert "(0.5 ms a pass)" in done and "forced mistake" not in done


def test_with_the_mistake_both_lanes_report_the_stroke_after_the_ddpms_mistake_step(live: Live) -> None:
    from models.image.race import MISTAKE_PIXELS, mistake_step

    steps = 20
    result = run(exchange(live.ws("race/image"), {"digit": 7, "steps": steps, "mistake": True}))
    assert result.code == 1000
    at = mistake_step(steps)
    for frame in result.frames:
        ar, diffusion = lanes(frame)["ar"], lanes(frame)["diffusion"]
        assert diffusion["forced"] == (list(MISTAKE_PIXELS) if diffusion["forward_passes"] >= at else [])
        painted = ar["cursor"] if ar["cursor"] is not None else SIZE * SIZE
        assert ar["forced"] == [p for p in MISTAKE_PIXELS if p < painted]  # the painter reaches them in raster order
        assert ar["total_passes"] == SIZE * SIZE - len(MISTAKE_PIXELS)  # forced pixels take no pass
    final = lanes(result.frames[-1])
    assert final["ar"]["forced"] == final["diffusion"]["forced"] == list(MISTAKE_PIXELS)
    # the DDPM gets the stroke written in at its mistake step, the painter when its raster reaches row 7
    assert any(lanes(f)["diffusion"]["forced"] and not lanes(f)["ar"]["forced"] for f in result.frames)
    done = lanes(result.last)
    assert done["diffusion"]["mistake"].startswith(
        f"Diffusion (DDPM) got the stroke after step {at} of {steps} (middle). It still reads as a 7"
    )
    assert done["ar"]["mistake"].startswith(
        "Autoregressive (PixelCNN) painted the stroke when its raster reached it. It now reads as an 8"
    )
    assert "the stroke stayed (100% of its ink, as every painted pixel is final)" in done["ar"]["mistake"]
    # one run is one draw: each sentence goes on with its model's committed rate at this timing
    committed = load_recovery()
    assert committed is not None
    row = committed.row("middle")
    assert row is not None
    assert (
        f"Over {row.ddpm.samples} committed samples with the stroke at the middle timing it ends as the digit asked for in "
        in (done["diffusion"]["mistake"])
    )
    assert rate_text(row.ddpm) in done["diffusion"]["mistake"] and rate_text(row.pixel_ar) in done["ar"]["mistake"]
    drawn = run(exchange(live.ws("race/image", fmt="html"), {"digit": 7, "steps": steps, "mistake": True}))
    assert drawn.frames[-1]["content"].count('<path class="forced" d="M5,7h1') == 3  # the canvas, x_t and x0
    assert "The forced mistake" in drawn.last["content"] and drawn.last["content"].count("<li>") == 2


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"digit": 10}, "invalid request: digit should be less than or equal to 9"),
        ({"steps": 1001}, "steps 1001 is over the limit of 1000"),
        ({"steps": 0}, "invalid request: steps should be greater than or equal to 1"),
        ({"colour": "red"}, "invalid request: unknown field 'colour'"),
        ({"mistake": "yes"}, "invalid request: mistake should be a valid boolean"),
        ({"mistake_at": "soon"}, "invalid request: mistake_at should be 'early', 'middle' or 'late'"),
        ({"mistake_at": 0.5}, "invalid request: mistake_at should be 'early', 'middle' or 'late'"),  # names, not shares
        ({"mistake_at": "Late"}, "invalid request: mistake_at should be 'early', 'middle' or 'late'"),
        ({"mistake_at": None}, "invalid request: mistake_at should be 'early', 'middle' or 'late'"),
        ({"digit": None}, "invalid request: digit should be a valid integer"),
    ],
)
def test_invalid_requests_get_a_clear_error_and_1008(live: Live, request_: dict[str, Any], message: str) -> None:
    result = run(exchange(live.ws("race/image"), request_))
    assert result.code == 1008 and result.types == ["error"]
    assert result.last["message"] == message


def test_the_request_round_trips_through_the_url_and_keys_its_own_trajectory() -> None:
    settings = Settings(models="fake")
    request = ImageRaceRequest(digit=7, steps=20, guidance=2.5, seed=9, mistake=True, mistake_at="late")
    query = to_query(request)
    assert query == {"digit": "7", "steps": "20", "guidance": "2.5", "seed": "9", "mistake": "true", "mistake_at": "late"}
    assert from_query("race/image", query, settings) == (request, [])
    assert ImageRaceRequest().mistake_at == "middle"  # the default, and why, in models/image/request.py
    dropped_timing, timing_notes = from_query("race/image", {"mistake": "true", "mistake_at": "never"}, settings)
    assert dropped_timing == ImageRaceRequest(mistake=True, mistake_at="middle")
    assert timing_notes == ["ignored mistake_at='never': mistake_at should be 'early', 'middle' or 'late'"]
    assert from_query("race/image", {"mistake": "on"}, settings) == (ImageRaceRequest(mistake=True), [])  # a ticked checkbox
    assert parse_request("race/image", json.dumps(request.model_dump()), settings) == request
    # a trajectory of its own: the kind is in the key, and so is the mistake
    key = run_key("race/image", request)
    assert key.startswith("race/image:") and key != run_key("race/image", request.model_copy(update={"mistake": False}))
    assert key != run_key("race/image", request.model_copy(update={"mistake_at": "early"}))  # and its timing
    with pytest.raises(RequestError, match="steps 2000 is over the limit of 1000"):
        parse_request("race/image", '{"steps": 2000}', settings)
    dropped, notes = from_query("race/image", {"digit": "12", "steps": "5000"}, settings)
    assert dropped == ImageRaceRequest() and len(notes) == 2 and "steps 5000 is over the limit of 1000" in notes[1]


def test_the_lane_names_are_the_models(live: Live) -> None:
    from app.render import image_race
    from models.image import race

    assert (image_race.AUTOREGRESSIVE, image_race.DIFFUSION) == (race.AUTOREGRESSIVE, race.DIFFUSION)
    assert image_race.SIZE == race.IMAGE_SIZE


# ---------------------------------------------------------------------------------------------------------
# The done message's sentences, from frames made here


def _lane(name: str, digit: int, stroke_ink: int, passes: int) -> ImageLane:
    image = np.zeros((SIZE, SIZE), np.uint8)
    image.reshape(-1)[list(MISTAKE_PIXELS)] = stroke_ink
    probabilities = tuple(0.91 if d == digit else 0.01 for d in range(10))
    return ImageLane(
        name, image, image if name == DIFFUSION else None, passes, passes, 100.0, None, probabilities, MISTAKE_PIXELS
    )


def _done(request: ImageRaceRequest, ar_digit: int, recovery_file: Path) -> tuple[dict[str, Any], str]:
    frame = ImageRaceFrame(
        1, 1, 768, (_lane(AUTOREGRESSIVE, ar_digit, 255, 768), _lane(DIFFUSION, request.digit, 51, request.steps))
    )
    rendered = ImageRaceRun(request, recovery_file).done(frame, 0.0)
    return json.loads(rendered.json), rendered.html


def test_a_lane_that_keeps_the_stroke_and_still_draws_the_digit_is_not_said_to_recover(tmp_path: Path) -> None:
    committed = load_recovery()
    assert committed is not None
    file = tmp_path / "recovery.json"
    file.write_text(json.dumps(recovery_to_dict(committed)))
    request = ImageRaceRequest(digit=3, steps=20, seed=0, mistake=True, mistake_at="late")
    data, html_ = _done(request, 3, file)
    ar, diffusion = data["lanes"][0]["mistake"], data["lanes"][1]["mistake"]
    assert ar.startswith(
        "Autoregressive (PixelCNN) painted the stroke when its raster reached it. It still reads as a 3 (91%); the stroke "
        "stayed (100% of its ink, as every painted pixel is final) and became part of the drawing."
    )
    assert "recovered" not in ar and "recovered" not in diffusion
    late = committed.row("late")
    assert late is not None and committed.baseline["pixel_ar"] is not None
    assert f"Over {late.pixel_ar.samples} committed samples with the stroke (at any timing) it ends as the digit" in ar
    assert f"in {rate_text(late.pixel_ar)}, against " in ar
    assert diffusion.startswith(
        "Diffusion (DDPM) got the stroke after step 16 of 20 (late). It still reads as a 3 (91%); the stroke faded to "
        "20% of its ink."
    )
    assert f"in {rate_text(late.ddpm)}" in diffusion
    assert "(measured at 50 steps, guidance 1; this run: 20 steps, guidance 1)" in diffusion  # not this run's settings
    assert "Quality, measured on this run: the classifier reads the DDPM&#39;s image as a 3 (91%, the digit asked for)" in html_


def test_a_lane_that_built_on_the_stroke_says_so_and_without_a_committed_file_says_that(tmp_path: Path) -> None:
    request = ImageRaceRequest(digit=3, steps=50, seed=0, mistake=True, mistake_at="early")
    data, html_ = _done(request, 8, tmp_path / "missing.json")
    ar = data["lanes"][0]["mistake"]
    assert ar.startswith("Autoregressive (PixelCNN) painted the stroke when its raster reached it. ")
    assert "It now reads as an 8 (91%), not the 3 asked for; the stroke stayed (100% of its ink" in ar
    assert ar.endswith("No committed measurement of how often it does is on this server.")
    assert "the PixelCNN&#39;s as an 8 (91%, not the 3 asked for)" in html_
    assert "measured at" not in data["lanes"][1]["mistake"]


def test_without_the_mistake_the_done_message_reads_no_committed_file(tmp_path: Path) -> None:
    request = ImageRaceRequest(digit=3, steps=50, seed=0)
    data, html_ = _done(request, 3, tmp_path / "missing.json")
    assert all("mistake" not in lane for lane in data["lanes"]) and "The forced mistake" not in html_


def _recovery(ddpm_matches: tuple[int, int, int], baseline: int = 100) -> Recovery:
    ar = Outcome.measured(40, 100, 1.0)
    rows = tuple(
        TimingRow(
            timing, share, round(share * 50), 999 - round(share * 1000), 0.3 + share / 2, Outcome.measured(m, 100, share), ar
        )
        for (timing, share), m in zip(MISTAKE_TIMINGS.items(), ddpm_matches)
    )
    baselines = {"ddpm": Outcome.measured(baseline, 100, 0.2), "pixel_ar": Outcome.measured(90, 100, 0.2)}
    return Recovery(
        50, 1.0, 10, 0, {}, baselines, rows, "train10k", tuple([0.2] * 10), 0.2, "python -m models.image.evaluate_race"
    )


def test_the_summary_says_where_refinement_keeps_its_rate_and_where_it_falls_below_it() -> None:
    mixed = recovery_summary(_recovery((99, 75, 60)))
    assert mixed.startswith(
        "Without the stroke the DDPM ends as the digit asked for in 100% (96-100%, 95% interval); its refinement"
    )
    assert "keeps that rate when the stroke comes early (99%, 95-100%; 20% of its ink left), and falls below it" in mixed
    assert "when it comes middle (75%, 66-82%; 50% of its ink left) or late (60%, 50-69%; 80% of its ink left)." in mixed
    assert mixed.endswith("ends as the digit in 40% (31-50%, 95% interval), against 90% without it, whatever the DDPM's timing.")
    assert "at every timing measured: early" in recovery_summary(_recovery((100, 99, 98)))
    assert "at no timing measured: early (80%" in recovery_summary(_recovery((80, 70, 60)))


# ---------------------------------------------------------------------------------------------------------
# Pages


def test_the_page_renders_its_knobs_from_the_url(client: TestClient) -> None:
    page = client.get("/race/image?digit=7&steps=37&guidance=2.5&seed=9&mistake=true&mistake_at=late").text
    assert '<option value="7" selected>7</option>' in page
    assert re.search(r'<select name="steps">.*<option value="37" selected>37</option>', page, re.S)
    assert all(f'<option value="{n}">{n}</option>' in page for n in (20, 50, 100))
    assert 'name="guidance" min="0" max="10" step="0.5" value="2.5"' in page and 'name="seed"' in page and 'value="9"' in page
    assert '<input type="checkbox" name="mistake" value="true" checked>' in page
    timing = re.search(r'<select name="mistake_at">(.*?)</select>', page, re.S)
    assert timing is not None and re.findall(r'<option value="(\w+)"', timing[1]) == ["early", "middle", "late"]
    assert '<option value="late" selected>late: after 80% of its steps</option>' in timing[1]
    assert 'action="/race/image"' in page and 'hx-get="/race/image/run"' in page and 'data-page="/race/image"' in page
    embed_link = "/embed/race/image?digit=7&amp;steps=37&amp;guidance=2.5&amp;seed=9&amp;mistake=true&amp;mistake_at=late"
    assert f'href="{embed_link}&amp;autoplay=1"' in page
    assert 'aria-current="page">Image race</a>' in page
    # every demo exports (the registry): the links carry the page's run
    assert 'href="/export/race/image.gif?digit=7&amp;steps=37&amp;guidance=2.5&amp;seed=9' in page
    assert 'href="/export/race/image.json?digit=7&amp;steps=37' in page
    assert page.count('class="lane lane-') == 2 and "Fake lanes for tests" in page  # the backend's facts
    assert "paints each pixel" in page and "refines" in page and "measured as the race runs, never picked" in page
    unticked = client.get("/race/image").text
    assert '<input type="checkbox" name="mistake" value="true">' in unticked
    assert '<option value="3" selected>3</option>' in unticked and '<option value="50" selected>50</option>' in unticked


def test_the_page_shows_the_committed_recovery_rates_per_timing_as_the_file_has_them(client: TestClient) -> None:
    data = json.loads((Path(__file__).resolve().parents[2] / "docs" / "image-race-recovery.json").read_text())
    page = client.get("/race/image?mistake=true&mistake_at=early").text
    table = re.search(r'<table class="recovery-table">(.*?)</table>', page, re.S)
    assert table is not None
    rows = re.findall(
        r"<tr(?: class=\"current\" aria-current=\"true\")?><th scope=\"row\">(.*?)</th><td>(.*?)</td><td>(.*?)</td></tr>",
        table[1],
    )
    expected = [("no stroke", data["baseline"])] + [(row["timing"], row) for row in data["timings"]]
    assert [label.split(":")[0].split(" (")[0] for label, _, _ in rows] == [name for name, _ in expected]
    for (label, ddpm, pixel), (name, source) in zip(rows, expected):
        for cell, measured in ((ddpm, source["ddpm"]), (pixel, source["pixel_ar"])):
            numbers = (
                f"{measured['matches']} of {measured['samples']} ({measured['matches'] / measured['samples'] * 100:.0f}%, "
                f"{measured['low'] * 100:.0f}-{measured['high'] * 100:.0f}%); {measured['ink_left'] * 100:.0f}% "
            )
            assert cell.startswith(numbers), (cell, numbers)
        if name != "no stroke":
            assert f"after step {source['step']} of {data['ddim_steps']}, t = {source['timestep']}" in label
    assert '<tr class="current" aria-current="true"><th scope="row">early (this setting)' in table[1]  # the URL's timing
    ink = data["region_ink"]["per_class"]
    assert f"{min(ink) * 100:.0f}% of full ink on average for the {ink.index(min(ink))}s" in page
    assert f"up to {max(ink) * 100:.0f}% for the {ink.index(max(ink))}s" in page
    assert f"written by <code>{html.escape(data['command'])}</code>" in page


def test_the_run_fragment_and_the_embed(client: TestClient) -> None:
    run_block = client.get("/race/image/run?digit=5&steps=20&mistake=true").text
    assert 'hx-ws:connect="/ws/race/image"' in run_block and '<section id="run"' in run_block
    sent = re.search(r"hx-vals='([^']*)'", run_block)
    assert sent is not None
    sent_request = {"digit": 5, "steps": 20, "guidance": 1.0, "seed": 0, "mistake": True, "mistake_at": "middle"}
    assert json.loads(html.unescape(sent[1])) == sent_request
    embed = client.get("/embed/race/image?autoplay=1").text
    assert '<header class="top">' not in embed and 'hx-ws:connect="/ws/race/image"' in embed


def test_an_invalid_url_value_is_dropped_with_a_note(client: TestClient) -> None:
    page = client.get("/race/image?digit=11&steps=5000").text
    assert "ignored digit=" in page and "steps 5000 is over the limit of 1000" in page


def test_the_image_race_is_linked_where_the_other_demos_are(client: TestClient) -> None:
    for path in ("/", "/text", "/race"):
        assert 'href="/race/image"' in client.get(path).text


def test_without_an_image_race_backend_the_page_says_so_and_a_run_is_refused() -> None:
    backends = Backends(text=FakeText(), image=FakeImage(), race=FakeRace())  # as callers that predate the image race
    assert backends.untrained == ["fake-text", "fake-image", "fake-text-ar"]
    app = create_app(Settings(models="fake"), loader=lambda _s: backends, use_torch=False)
    with TestClient(app) as c:
        assert "no image race loaded" in c.get("/race/image").text
        with c.websocket_connect("/ws/race/image?format=json") as ws:
            ws.send_text("{}")
            assert "no image race loaded" in json.loads(ws.receive_text())["message"]


# ---------------------------------------------------------------------------------------------------------
# The real models


def _checkpoints_without_the_pixel_model(tmp_path: Path) -> Path:
    for name in ("image-ddpm", "digit-classifier"):
        (tmp_path / name).symlink_to(CHECKPOINTS / name)
    return tmp_path


@pytest.mark.real_model
def test_a_missing_pixel_checkpoint_falls_back_loudly_and_the_ddpm_is_loaded_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(checkpoint_dir=_checkpoints_without_the_pixel_model(tmp_path), prewarm=False)
    with caplog.at_level(logging.WARNING, logger="theater.models"):
        backends = load_backends(settings)
    race = backends.image_race
    assert isinstance(race, RealImageRace)
    assert isinstance(backends.image, RealImage) and race.image is backends.image.model  # shared, not a second copy
    assert race.untrained == ["image-pixel-ar"] and not race.trained and "image-pixel-ar" in backends.untrained
    assert "image-pixel-ar" in backends.problems and "image-ddpm" not in backends.untrained
    assert any("UNTRAINED" in r.message and "image-pixel-ar" in r.message for r in caplog.records)
    assert "Gated PixelCNN, 6 layers" in race.facts and "M parameters" in race.facts
    app = create_app(settings, loader=lambda _s: backends, use_torch=False)
    with TestClient(app) as c:
        ready = c.get("/readyz").json()
        assert "image-pixel-ar" in ready["untrained"] and "image-pixel-ar" in ready["problems"]
        page = c.get("/race/image").text
        assert "<strong>UNTRAINED</strong>" in page and "image-pixel-ar" in page and "(UNTRAINED)" in page


@pytest.fixture(scope="module")
def real_race() -> RealImageRace:
    from models.image.model import load_image_model
    from models.image.pixel_ar import load_pixel_ar, untrained_pixel_ar

    image = load_image_model(CHECKPOINTS / "image-ddpm", CHECKPOINTS / "digit-classifier")
    assert image.trained and image.classifier is not None
    folder = CHECKPOINTS / "image-pixel-ar"  # committed once trained; until then the untrained model, same class
    pixel = load_pixel_ar(folder) if folder.exists() else untrained_pixel_ar()
    return RealImageRace(pixel, image)


@pytest.mark.real_model
def test_a_real_race_completes_over_the_socket(real_race: RealImageRace) -> None:
    backends = Backends(text=FakeText(), image=FakeImage(), race=FakeRace(), image_race=real_race)
    with live_server(backends=backends, use_torch=True) as server:
        result = run(exchange(server.ws("race/image"), {"digit": 3, "steps": 10, "seed": 1}))
    assert result.code == 1000 and result.types[-1] == "done", result.last
    final = lanes(result.frames[-1])
    for lane in final.values():
        assert lane["forward_passes"] == lane["total_passes"] and lane["finished"]
    assert final["ar"]["total_passes"] == SIZE * SIZE and final["diffusion"]["total_passes"] == 10
    assert final["ar"]["cursor"] is None and final["diffusion"]["x0_png"] is not None
    done = lanes(result.last)
    assert done["ar"]["forward_passes"] == SIZE * SIZE and done["diffusion"]["forward_passes"] == 10
    for lane in done.values():
        assert png_size(lane["png"]) == (SIZE, SIZE) and lane["wall_ms"] > 0
        assert lane["verdict"] is not None and 0 <= lane["verdict"]["digit"] <= 9  # the trained classifier reads it
    assert done["diffusion"]["verdict"]["digit"] == 3  # the trained DDPM draws the digit asked for
