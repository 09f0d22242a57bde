"""Words drawn as words: the pieces of one word joined (page and GIF), line breaks and the end of a story drawn as
what they mean; the race's one run set beside the committed frontier; the cited files served."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from app.export.gif_text import chips, layout
from app.main import create_app
from app.render.race import in_context
from app.render.text import END_OF_STORY_LABEL, NEW_LINE_MARK, render_text_frame, shown_text, token_view, words_html
from app.settings import Settings
from models.frames import BLANK, COMMITTED, FIXED, TextFrame, TextToken
from models.text.decoding import TextRequest
from models.text.frontier import read_frontier
from models.text.tokenizer import END_OF_STORY
from tests.app.live import fake_backends


def token(text: str, state: str = COMMITTED) -> TextToken:
    return TextToken(state, None if state == BLANK else 7, "" if state == BLANK else text, 0.9, committed_at=1)


def words_of(html: str) -> list[str]:
    """The visual words of a canvas: each span.word's chip texts, joined."""
    words = []
    for group in re.findall(r'<span class="word">(.*?)</span>(?=<span class="word">|<span class="br"|$)', html):
        words.append("".join(re.findall(r'<span class="w">([^<]*)</span>', group)))
    return words


def canvas(tokens: list[TextToken]) -> str:
    return str(
        words_html(
            [f'<span class="tok"><span class="w">{token_view(i, t).text}</span></span>' for i, t in enumerate(tokens)], tokens
        )
    )


def test_pieces_that_continue_a_word_are_grouped_with_it() -> None:
    tokens = [token("Once", FIXED), token(" the"), token(" v"), token("ill"), token("age"), token(".")]
    assert words_of(canvas(tokens)) == ["Once", "the", "village."]


def test_a_blank_is_a_word_of_its_own_and_splits_nothing_it_does_not_touch() -> None:
    tokens = [token(" jo"), token("", BLANK), token("ing"), token(" ran")]
    assert words_of(canvas(tokens)) == ["jo", "", "ing", "ran"]  # a blank chip draws no text here


def test_line_breaks_and_the_end_of_a_story_break_the_line_and_are_never_raw() -> None:
    tokens = [token(" end"), token("."), token(END_OF_STORY), token("\n"), token("Once"), token(" upon")]
    html = canvas(tokens)
    assert html.count('<span class="br" aria-hidden="true"></span>') == 2
    assert END_OF_STORY not in html and "&lt;|endoftext|&gt;" not in html
    assert END_OF_STORY_LABEL in html and NEW_LINE_MARK in html
    assert words_of(html)[0] == "end."
    assert shown_text(END_OF_STORY) == "end of story" and shown_text("\n\n") == NEW_LINE_MARK and shown_text(" ") == "\u2423"
    view = token_view(2, token(END_OF_STORY))
    assert "eos" in view.classes.split() and view.text == END_OF_STORY_LABEL
    assert "nl" in token_view(3, token("\n")).classes.split()


def test_a_rendered_frame_wraps_words_and_keeps_one_chip_per_token() -> None:
    tokens = [token("Once", FIXED), token(" v"), token("ill"), token("age"), token(END_OF_STORY), token("", BLANK)]
    frame = TextFrame(step=1, total=2, tokens=tuple(tokens), committed=(), remasked=(), forward_passes=1)
    html = json.loads(render_text_frame(frame, 1.0).html)["content"]
    assert html.count('class="word"') == 4  # Once / village / end of story / the blank
    assert html.count('class="tok') == len(tokens)  # the inspector still addresses pieces


def test_the_gif_draws_a_word_of_pieces_joined_and_never_wraps_inside_it() -> None:
    tokens = [{"state": "committed", "text": t, "confidence": 0.9} for t in [" the", " v", "ill", "age", "."]]
    row = chips(tokens)
    assert [c.joined for c in row] == [(False, False), (False, True), (True, True), (True, True), (True, False)]
    assert [c.gap for c in row[2:]] == [0, 0, 0]
    placed = layout(row, 0, sum(c.width for c in row[:3]) + 20)  # room for "the v" but not the whole word
    lines = {chip.text: line for _x, line, chip in placed}
    assert lines["v"] == lines["ill"] == lines["age"] == lines["."] == 1 and lines["the"] == 0
    xs = [x for x, _line, _chip in placed[1:]]
    widths = [c.width for c in row[1:]]
    assert all(xs[k + 1] == xs[k] + widths[k] for k in range(3)), "the pieces touch"


def test_the_gif_breaks_the_row_after_an_end_of_story() -> None:
    tokens = [{"state": "committed", "text": t, "confidence": 0.9} for t in [" end", END_OF_STORY, "Once"]]
    row = chips(tokens)
    assert row[1].text == END_OF_STORY_LABEL and row[1].breaks
    placed = layout(row, 0, 10_000)
    assert [line for _x, line, _chip in placed] == [0, 0, 1]


def test_the_race_sets_one_run_beside_the_committed_frontier_for_its_setting() -> None:
    rows = read_frontier()
    sentence = in_context(TextRequest(length=64, steps=64), rows)
    row = next(r for r in rows if r.plain_diffusion and r.steps == 64)
    twin = next(r for r in rows if r.model == "ar")
    assert sentence.startswith(f"One run is one draw: over {row.samples} samples of 64 tokens at this setting (1 token a pass)")
    assert f"judge perplexity {row.judge_ppl:,.1f}" in sentence and f"the twin {twin.judge_ppl:,.1f}" in sentence
    assert "(4 tokens a pass)" in in_context(TextRequest(length=64, steps=16), rows)
    # no row for it: say nothing rather than something measured elsewhere
    assert in_context(TextRequest(length=64, steps=63), rows) == ""
    assert in_context(TextRequest(length=64, steps=64, remask="loop"), rows) == ""
    assert in_context(TextRequest(prompt="Tom ___ home.", length=4, steps=4), rows) == ""
    assert in_context(None, rows) == ""


def test_the_cited_files_are_served_and_nothing_else_is() -> None:
    with TestClient(create_app(Settings(models="fake"), loader=lambda _s: fake_backends())) as client:
        served(client)


def served(client: TestClient) -> None:
    response = client.get("/data/text-frontier.csv")
    assert response.status_code == 200 and response.text.startswith("name,model,steps")
    assert response.headers["content-type"].startswith("text/csv")
    assert client.get("/data/image-race-recovery.json").json()
    for name in ("README.md", "architecture.md"):
        missing = client.get(f"/data/{name}")
        assert missing.status_code == 404 and "text-frontier.csv" in missing.text  # says what it does offer
    assert client.get("/data/..%2FREADME.md").status_code == 404
    page = client.get("/why").text
    assert '<a href="/data/text-frontier.csv"><code>docs/text-frontier.csv</code></a>' in page
    assert '<a href="/data/data-efficiency.csv"><code>docs/data-efficiency.csv</code></a>' in page
