"""Change a word and rework the text, through the web layer with the stand-in models: every limit of an edit at its
edge with the field named, the edit kept in the URL (a link is the run), the form under a finished run, the
before/after view, the race's twin reading only what came before, and a bad edit costing the session nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.demos.protocol import parse_request
from app.errors import RequestError
from app.settings import Settings
from app.web.query import to_query
from models.text.decoding import EDIT_WORD_CHARS_MAX, RaceRequest, TextRequest
from tests.app.live import Live, exchange, run

SETTINGS = Settings(max_edit_word_chars=10, max_edit_window=6)
PROMPT = "Once upon a time she was very"
BASE: dict[str, Any] = {"prompt": PROMPT, "length": 20, "steps": 10, "seed": 2}
EDIT: dict[str, Any] = {**BASE, "edit_at": 3, "edit_word": "happy", "redo": "window", "window": 2}


def refused(payload: dict[str, Any], kind: str = "text") -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse_request(kind, json.dumps(payload), SETTINGS)
    return caught.value


@pytest.mark.parametrize("kind", ["text", "race"])
def test_edit_limits_at_their_edges_name_the_field(kind: str) -> None:
    ok = parse_request(kind, json.dumps({**EDIT, "edit_word": "x" * 10, "window": 6}), SETTINGS)
    assert isinstance(ok, TextRequest) and ok.edit_word == "x" * 10 and ok.window == 6
    too_long = refused({**EDIT, "edit_word": "x" * 11}, kind)
    assert too_long.field == "edit_word" and "11 characters, the limit is 10" in too_long.message
    wide = refused({**EDIT, "window": 7}, kind)
    assert wide.field == "window" and "window 7 is over the limit of 6" in wide.message
    assert "edit_word" in refused({**EDIT, "edit_word": "x" * (EDIT_WORD_CHARS_MAX + 1)}, kind).message  # the hard cap
    assert "window should be greater than or equal to 1" in refused({**EDIT, "window": 0}, kind).message
    assert "edit_at should be greater than or equal to 0" in refused({**EDIT, "edit_at": -1}, kind).message
    empty = refused({**EDIT, "edit_word": "  "}, kind)
    assert empty.field == "edit_word" and "edit_word is empty" in empty.message
    assert refused({**BASE, "edit_word": "happy"}, kind).field == "edit_at"  # a word with no place
    assert refused({**EDIT, "edit_word": "a\tb"}, kind).field == "edit_word"
    assert refused({**EDIT, "edit_word": "a___"}, kind).field == "edit_word"
    assert "redo should be 'window', 'after' or 'all'" in refused({**EDIT, "redo": "before"}, kind).message


def test_a_rework_round_trips_through_the_url() -> None:
    request = TextRequest(**EDIT)
    assert TextRequest.model_validate(to_query(request)) == request
    assert RaceRequest(**EDIT).base() == RaceRequest(**BASE)  # the run it starts from: the same key as a plain run


def done_of(result: Any) -> dict[str, Any]:
    assert result.last["type"] == "done", result.last
    return result.last


def test_a_rework_streams_and_ends_with_the_before_after_view(live: Live) -> None:
    result = run(exchange(live.ws("text", fmt="html"), EDIT))
    done = done_of(result)
    rework = done["rework"]
    assert rework["at"] == 3 and rework["new_word"] == "happy" and rework["base_passes"] == 10
    assert rework["words_before"] == 3 and rework["words_after"] == 16
    html = done["content"]
    assert '<mark class="edited">happy</mark>' in html
    assert "Words changed:" in html and "the run it started from took 10 passes" in html
    # the form under it edits the same base again (one edit a link), with every base field kept
    assert 'id="rework"' in html and 'name="edit_at"' in html
    for name in ("prompt", "length", "steps", "seed"):
        assert re.search(rf'type="hidden" name="{name}" value="{re.escape(str(BASE[name]))}"', html)
    # the same request again: the same frames (the link is the run)
    again = run(exchange(live.ws("text"), EDIT))
    first = run(exchange(live.ws("text"), EDIT))
    assert [m.get("tokens") for m in again.messages] == [m.get("tokens") for m in first.messages]


def test_a_plain_run_offers_the_edit_form_with_each_words_positions(live: Live) -> None:
    done = done_of(run(exchange(live.ws("text", fmt="html"), BASE)))
    options = re.findall(r'<option value="(\d+)" data-word="[^"]*" data-first="(\d+)" data-last="(\d+)"', done["content"])
    assert len(options) == 20  # the fake writes one word a token
    assert [int(value) for value, _, _ in options] == list(range(20))
    assert all(int(last) == int(first) + 1 for _, first, last in options)


def test_the_race_twin_reads_the_text_before_the_word_and_the_word(live: Live) -> None:
    twin = live.backends.race.autoregressive  # type: ignore[attr-defined]  # the fake race's twin
    prompts_before = len(twin.prompts)
    done = done_of(run(exchange(live.ws("race", fmt="html"), EDIT)))
    lanes = {lane["lane"]: lane for lane in done["lanes"]}
    assert lanes["ar"]["rework"]["changed_before"] == 0
    prompt = twin.prompts[prompts_before]
    text = run(exchange(live.ws("text"), BASE)).last["text"]
    words = text[len(PROMPT) :].split()
    assert prompt == PROMPT + " " + " ".join(words[:3]) + " happy"
    assert "Each lane against the text it started from" in done["content"]


def test_a_bad_edit_is_an_error_message_and_the_server_goes_on(live: Live) -> None:
    result = run(exchange(live.ws("text"), {**EDIT, "edit_at": 20}))
    assert result.last["type"] == "error"
    assert "edit_at is 20, but the run wrote 20 words: pick 0 to 19" in result.last["message"]
    assert done_of(run(exchange(live.ws("text"), {**EDIT, "edit_at": 19})))["rework"]["at"] == 19  # the edge
    # (more text than the context holds: tests/models/test_rework.py, where the tokenizer counts as the canvas does)
    assert done_of(run(exchange(live.ws("text"), BASE)))["type"] == "done"


def test_the_page_keeps_the_edit_in_its_form_and_a_bad_one_leaves_the_plain_run(client: TestClient) -> None:
    page = client.get("/text", params=EDIT).text
    assert "Reworking word 3 of the run these settings make" in page
    for name in ("edit_at", "edit_word", "redo", "window"):
        assert re.search(rf'<input type="hidden" name="{name}" value="{re.escape(str(EDIT[name]))}">', page)
    race = client.get("/race", params=EDIT).text
    assert "the twin keeps what came before and writes everything after it" in race
    bad = client.get("/text", params={**EDIT, "edit_word": ""})
    assert bad.status_code == 200
    assert "ignored the edit: edit_word is empty" in bad.text and "Reworking word" not in bad.text


def test_the_pages_cite_the_presets_committed_measurement(client: TestClient) -> None:
    measured = json.loads(client.get("/data/rework-eval.json").text)
    seeds, diffusion = measured["seeds"], measured["lanes"]["diffusion"]
    for path in ("/text", "/race"):
        page = client.get(path).text
        assert f"Measured on this preset over {seeds} seeds" in page
        assert f"in {diffusion['follows_sad']} of {seeds} diffusion reworks" in page
        assert "edit_word=sad" in page  # the preset's link carries its edit


def test_a_reworks_trace_and_gif_carry_the_edit(client: TestClient) -> None:
    trace = client.get("/export/text.json", params=EDIT)
    assert trace.status_code == 200
    data = trace.json()
    assert data["request"]["edit_at"] == 3 and data["request"]["edit_word"] == "happy"
    assert data["messages"][-1]["rework"]["new_word"] == "happy"
    gif = client.get("/export/text.gif", params=EDIT)
    assert gif.status_code == 200 and gif.content[:6] == b"GIF89a"
    bad = client.get("/export/text.json", params={**EDIT, "edit_word": ""})
    assert bad.status_code == 400 and "edit_word is empty" in bad.text
