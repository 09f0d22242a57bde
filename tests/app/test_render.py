"""Frames -> messages: the JSON fields of the protocol and the HTML fragment htmx swaps in."""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from app.backends.fakes import FakeImage, FakeText
from app.demos import producers as render_module
from app.demos.producers import image_run, text_run
from app.engine.interface import Producer
from app.render import decided
from app.render.decided import decided_at
from app.render.image import PLOT_H, PLOT_W, ImageRun, png_base64
from app.render.message import Rendered
from app.render.notices import render_error, render_queued
from app.render.text import confidence_class, render_text_frame, visible
from app.settings import REPO_ROOT
from app.web.templating import stream_macros
from models.frames import BLANK, FIXED, NEW, REMASKED, TextFrame, TextToken, TokenAlternative
from models.image.request import ImageRequest
from models.text.decoding import TextRequest
from tests.app.live import backends_with


def rendered(produce: Producer) -> list[Rendered]:
    """Run a producer the way the engine does: each yielded item is a message or a deferred render of one."""
    return [item if isinstance(item, Rendered) else item() for item in produce(lambda: False)]


def decode(png: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(png))))


def test_text_messages_carry_data_and_fragment() -> None:
    messages = rendered(text_run(backends_with(text=FakeText()), TextRequest(length=8, steps=4, seed=2)))
    assert [json.loads(m.json)["type"] for m in messages] == ["frame"] * 5 + ["done"]
    first, last = json.loads(messages[0].json), json.loads(messages[4].json)
    assert first["step"] == 0 and first["total"] == 4 and first["masked"] == 8
    assert last["masked"] == 0 and last["decided"] == 8 and last["forward_passes"] == 4
    assert set(first["tokens"][0]) == {
        "text",
        "state",
        "confidence",
        "guess",
        "alternatives",
        "committed_at",
        "remask_count",
        "was",
    }
    assert "content" not in first and "ms_per_step" in first
    html = json.loads(messages[0].html)
    assert {k: v for k, v in html.items() if k != "content"} == first
    assert html["content"].startswith('<article class="frame text-frame"')
    assert html["content"].count('class="tok blank') == 8
    done = json.loads(messages[-1].html)
    assert done["text"].startswith("Once upon a time") and done["target"] == "#notice"


def test_text_fragment_marks_states_and_escapes() -> None:
    tokens = (
        TextToken(FIXED, 1, "<script>", 1.0),
        TextToken(NEW, 2, " fresh", 0.95, committed_at=3, remask_count=1),
        TextToken(BLANK, None, "", 0.0, guess=" maybe"),
        TextToken(REMASKED, None, "", 0.0, guess=" again", remask_count=2),
    )
    content = json.loads(render_text_frame(TextFrame(3, 5, tokens, 3), 12.5).html)["content"]
    assert "<script>" not in content and "&lt;script&gt;" in content
    assert 'class="tok c4 new redecided sp"' in content
    assert 'class="tok blank remasked sp"' in content
    assert '<span class="g">maybe</span>' in content
    assert 'data-status="step 3 of 5, 1 of 3 tokens decided"' in content
    assert "12.5" in content and " hidden>" in content


def test_a_token_sent_back_shows_what_it_was_and_the_run_counts_changes_of_mind() -> None:
    alternatives = (TokenAlternative(" toy", 0.4), TokenAlternative(" ball", 0.3))
    tokens = (
        TextToken(FIXED, 1, "Tom", 1.0),
        TextToken(REMASKED, None, "", 0.0, " toy", alternatives, None, 1, was=" ball"),
        TextToken(BLANK, None, "", 0.0, " cat", (), None, 2, was=" dog"),
        TextToken(NEW, 5, " ran", 0.8, "", alternatives, 3, 1),
    )
    message = render_text_frame(TextFrame(3, 5, tokens, 3), 1.0, remasking=True)
    content = json.loads(message.html)["content"]
    assert '<s class="g was">ball</s>' in content and '<s class="g was">dog</s>' in content
    assert "was &#39;ball&#39;, sent back 1x" in content
    assert "<b>4</b> changes of mind" in content  # 1 + 2 + 1 sends back so far
    data = json.loads(message.json)["tokens"]
    # the inspector's data, as the frame carried it
    assert data[1]["was"] == " ball" and data[1]["alternatives"] == [[" toy", 0.4], [" ball", 0.3]]
    assert data[3]["committed_at"] == 3 and data[3]["remask_count"] == 1 and data[3]["confidence"] == 0.8
    assert "changes of mind" not in json.loads(render_text_frame(TextFrame(3, 5, tokens, 3), 1.0).html)["content"]


def test_confidence_buckets() -> None:
    assert [confidence_class(c) for c in (0.0, 0.19, 0.2, 0.5, 0.99, 1.0)] == ["c0", "c0", "c1", "c2", "c4", "c4"]


def test_control_bytes_are_made_visible() -> None:
    assert visible("a\x1fb\nc") == "a<1F>b\u23cec"


def test_image_messages_carry_pngs_and_the_schedule_plot() -> None:
    fake = FakeImage()
    produce = image_run(backends_with(image=fake), ImageRequest(digit=1, steps=4, seed=1))
    messages = [json.loads(m.json) for m in rendered(produce)]
    assert [m["type"] for m in messages] == ["frame"] * 5 + ["done"]
    first, last = messages[0], messages[4]
    assert decode(first["xt_png"]).shape == (28, 28) and decode(first["x0_png"]).dtype == np.uint8
    assert first["timestep"] == 999 and first["noise_level"] > last["noise_level"]
    assert not np.array_equal(decode(first["xt_png"]), decode(last["xt_png"]))
    assert decode(messages[-1]["png"]).shape == (28, 28)
    content = json.loads(rendered(produce)[0].html)["content"]
    assert content.count("data:image/png;base64,") == 2
    assert '<svg class="schedule"' in content and 'class="dot"' in content
    assert not re.search(r"\sstyle=", content)
    final = json.loads(rendered(produce)[-2].html)
    assert final["digit_probabilities"][1] == 1.0 and "classifier on x<sub>0</sub>:</span> <b>1</b>" in final["content"]


def timeline_svg(content: str) -> str:
    start = content.index('<svg class="timeline"')
    inner_end = content.index("</svg>", start)  # the nested strip's
    return content[start : content.index("</svg>", inner_end + 1) + len("</svg>")]


def test_image_frames_carry_the_timeline_so_far_and_done_says_when_it_was_decided() -> None:
    fake = FakeImage()
    request = ImageRequest(digit=7, steps=50, seed=1)
    messages = rendered(image_run(backends_with(image=fake), request))
    frames, done = messages[:-1], messages[-1]
    history = [tuple(json.loads(m.json)["digit_probabilities"]) for m in frames]
    expected = decided_at(history, 7)
    assert expected is not None and 0 < expected < 50
    svgs = [timeline_svg(json.loads(m.html)["content"]) for m in reversed(frames)][::-1]  # HTML asked for last first
    rectangles = [sum(int(n) for n in re.findall(r"h(\d+)v1", svg)) for svg in svgs]
    assert rectangles == sorted(rectangles) and rectangles[-1] > rectangles[0]  # the strip grows step by step
    assert all('role="img" aria-label="Classifier on x0 over steps 0 to' in svg for svg in svgs)
    assert f"over steps 0 to {expected - 1} of 50" in svgs[expected - 1] and 'class="passed"' not in svgs[expected - 1]
    assert f"leading 7: over 50% at step {expected}" in svgs[expected] and 'class="passed"' in svgs[expected]
    assert f"first passed 50% at step {expected} of 50" in svgs[-1] and 'class="now"' not in svgs[-1]
    assert all(len(svg) < 2000 for svg in svgs)  # a few KB at most
    assert not any(re.search(r"\sstyle=", json.loads(m.html)["content"]) for m in frames)
    data, html = json.loads(done.json), json.loads(done.html)
    assert data["decided_at"] == expected and html["target"] == "#notice"
    assert html["content"].startswith('<p id="notice" class="notice done">Done: 50 steps, 50 forward passes,')
    assert f"; decided at step {expected} of 50.</p>" in html["content"]
    assert 'id="result" class="result" hx-swap-oob="true"' in html["content"]
    assert f"the classifier first gave the final digit 7 more than 50% at step {expected}." in html["content"]


def test_image_done_without_a_classifier_or_a_decision() -> None:
    fake = FakeImage()
    frames = list(fake.sample(ImageRequest(digit=2, steps=3, seed=1)))
    bare = [replace(f, digit_probabilities=()) for f in frames]
    run = ImageRun(fake.noise_schedule())
    messages = [run.frame(f, 1.0) for f in bare] + [run.done(bare[-1], 3.0)]
    assert "digit_probabilities" not in json.loads(messages[0].json)
    assert "no digit classifier loaded" in json.loads(messages[0].html)["content"]
    done = json.loads(messages[-1].html)
    assert done["decided_at"] is None and 'id="result"' not in done["content"]
    assert done["content"].endswith("ms per step.</p>")
    flat = tuple([0.1] * 10)
    unsure = [replace(f, digit_probabilities=(flat,)) for f in frames]
    run = ImageRun(fake.noise_schedule())
    messages = [run.frame(f, 1.0) for f in unsure] + [run.done(unsure[-1], 3.0)]
    done = json.loads(messages[-1].html)
    assert done["decided_at"] is None and "the classifier never gave the final digit 0 more than 50%" in done["content"]
    assert "Never decided: the classifier never gave the final digit 0 more than 50% (at most 10%)" in done["content"]
    assert "0 never over 50%" not in json.loads(messages[-2].html)["content"]  # frames say "leading", not "final"
    assert "0: not over 50% yet" in json.loads(messages[-2].html)["content"]


def test_the_placeholder_boxes_keep_the_frames_aspect_ratios() -> None:
    """The idle placeholder's empty boxes take the SVGs' shapes from static/theater.css: the same numbers."""
    css = (REPO_ROOT / "static" / "theater.css").read_text()
    assert f"aspect-ratio: {PLOT_W} / {PLOT_H}" in css and f"aspect-ratio: {decided.WIDTH} / {decided.HEIGHT}" in css
    placeholder = stream_macros().image_placeholder()
    assert placeholder.count('class="px empty"') == 2 and 'class="schedule empty"' in placeholder
    assert 'class="timeline empty"' in placeholder and "when is it decided" in placeholder


def test_notices_target_the_notice_line() -> None:
    queued = json.loads(render_queued(3, 7.4).html)
    assert queued["type"] == "queued" and queued["position"] == 3 and queued["eta_seconds"] == 7 and queued["target"] == "#notice"
    assert "position 3 in line, about 7 s" in queued["content"]
    error = json.loads(render_error("bad <thing>").html)
    assert "bad &lt;thing&gt;" in error["content"] and 'role="alert"' in error["content"]
    assert json.loads(render_error("x").json) == {"type": "error", "message": "x"}


def test_png_encoder_round_trips_through_pil() -> None:
    rng = np.random.default_rng(0)
    for shape in [(28, 28), (1, 28, 28), (3, 5)]:
        array = rng.integers(0, 256, size=shape, dtype=np.uint8)
        image = Image.open(io.BytesIO(base64.b64decode(png_base64(array))))
        assert image.mode == "L" and np.array_equal(np.asarray(image), array.reshape(array.shape[-2:]))


def test_html_message_is_the_json_message_plus_the_fragment() -> None:
    message = render_text_frame(TextFrame(1, 2, (TextToken(FIXED, 1, 'a\\"b <i>', 1.0),), 1), 3.0)
    html, plain = json.loads(message.html), json.loads(message.json)
    assert message.html.startswith(message.json[:-1] + ',"content":')
    assert {k: v for k, v in html.items() if k != "content"} == plain and html["content"].startswith("<article")


def test_memoised_text_render_is_byte_identical_to_rendering_each_frame_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's memo (chips and token JSON shared across frames) changes nothing in the output."""
    clock = itertools.count()
    monkeypatch.setattr(render_module, "perf_counter", lambda: next(clock) * 0.0123)  # ms_per_step 12.3
    request = TextRequest(length=24, steps=8, seed=4, remask="loop")  # remasked and re-decided chips too
    frames = list(FakeText().sample(request))
    assert any(t.remask_count for f in frames for t in f.tokens)

    def run() -> list[Rendered]:
        return rendered(text_run(backends_with(text=SimpleNamespace(sample=lambda _request, _stop: iter(frames))), request))[
            :-1
        ]  # without "done"

    cached = run()
    for frame, message in zip(frames, cached, strict=True):
        alone = render_text_frame(frame, 12.3, remasking=True)  # a fresh memo: nothing cached
        assert message.json == alone.json and message.html == alone.html
    late = run()
    for message in reversed(late):  # HTML first asked for out of order, as by a late html client
        assert not message.html_ready
        _ = message.html  # the first access renders it
    assert [m.html for m in late] == [m.html for m in cached]


def test_html_is_rendered_only_when_asked_for_and_then_kept() -> None:
    calls: list[int] = []
    frame = TextFrame(1, 2, (TextToken(FIXED, 1, "a", 1.0), TextToken(BLANK, None, "", 0.0, guess=" b")), 1)
    message = render_text_frame(frame, 3.0)
    assert not message.html_ready and json.loads(message.json)["tokens"][1]["guess"] == " b"
    pending = message.nbytes
    html = message.html
    assert message.html_ready and message.html is html and message.nbytes == len(message.json) + len(html) + 64
    assert pending == 2 * len(message.json) + 64  # a pending HTML variant is counted as the JSON again
    lazy = Rendered("frame", "{}", make_html=lambda: calls.append(1) or '{"content":""}')
    assert lazy.html == lazy.html == '{"content":""}' and calls == [1]
