"""The infill editor on /text, in Chromium, on the committed text model: words selected in the prompt become a gap
of as many blanks as they had tokens, the gap list resizes it, the URL keeps the template, and the run fills the
gap around the unchanged fixed text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from app.backends.fakes import FakeImage, FakeRace
from app.backends.interface import Backends
from app.backends.real import RealText
from tests.app.live import Live, live_server

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
PROMPT = "Tom had a red ball and a blue kite. He was sad."
PROMPT_BOX = "#controls textarea[name=prompt]"
pytestmark = pytest.mark.real_model  # every test's server runs the committed text model


@pytest.fixture(scope="module")
def diffusion() -> Any:
    from models.text.model import load_text_model

    return load_text_model(CHECKPOINTS / "text-diffusion")


@pytest.fixture(scope="module")
def live(diffusion: Any) -> Iterator[Live]:
    with live_server(backends=Backends(text=RealText(diffusion), image=FakeImage(), race=FakeRace())) as server:
        yield server


def select(page: Any, start: int, end: int) -> None:
    page.eval_on_selector(PROMPT_BOX, "(el, [s, e]) => { el.focus(); el.setSelectionRange(s, e); }", [start, end])


def url_prompt(page: Any) -> str:
    return parse_qs(urlparse(page.url).query)["prompt"][0]


def test_selection_to_gap_resize_and_generate(page: Any, live: Live, diffusion: Any) -> None:
    page.goto(f"{live.http}/text?length=16&steps=4&seed=3")
    box = page.locator(PROMPT_BOX)
    box.fill(PROMPT)
    expect(page.locator("#infill-gaps li")).to_have_text(["No gaps: the model writes 16 tokens after the prompt."])

    words = "blue kite"
    start = PROMPT.index(words)
    select(page, start, start + len(words))
    page.get_by_role("button", name="Selection → gap").click()
    size = len(diffusion.tokenizer.encode(words).ids)
    template = PROMPT.replace(words, f"___{{{size}}}")
    expect(box).to_have_value(template)
    expect(page.locator("#infill-status")).to_have_text(f"Replaced \u201c{words}\u201d with a gap of {size} blanks.")
    gap = page.get_by_role("spinbutton", name=re.compile(r"^Gap 1:"))
    expect(gap).to_have_value(str(size))
    expect(page.locator("#infill-gaps li")).to_have_count(1)
    assert url_prompt(page) == template  # the address bar holds the template

    gap.focus()  # resized from the keyboard
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    resized = PROMPT.replace(words, f"___{{{size + 2}}}")
    expect(box).to_have_value(resized)
    expect(gap).to_be_focused()  # the list updates in place while its input rewrites the prompt
    assert url_prompt(page) == resized

    page.click("#generate")
    page.wait_for_selector("#notice.done", timeout=60_000)
    page.keyboard.press("End")  # the final frame
    final = page.locator("#frames .frame:not([hidden])")
    expect(final).to_have_attribute("data-step", "4")
    assert page.console_errors == []
    chips = final.locator(".canvas .tok")
    states = chips.evaluate_all(
        "els => els.map(e => e.classList.contains('fixed') ? 'fixed' : e.classList.contains('blank') ? 'blank' : 'decided')"
    )
    texts = chips.evaluate_all("els => els.map(e => e.querySelector('.w').textContent)")
    left, right = PROMPT[:start], PROMPT[start + len(words) :]
    fixed = [text for text, state in zip(texts, states) if state == "fixed"]
    # the fixed text, unchanged (a chip shows a lone space token, the left piece's last, as a visible space sign)
    assert "".join(fixed).replace("\u2423", " ").replace(" ", "") == (left + right).replace(" ", "")
    assert len(fixed) == len(diffusion.tokenizer.encode(left).ids) + len(diffusion.tokenizer.encode(right).ids)
    assert states.count("blank") == 0 and states.count("decided") == size + 2  # the gap, filled
    first_decided = states.index("decided")
    assert states[first_decided : first_decided + size + 2] == ["decided"] * (size + 2)  # in the gap's place
    assert url_prompt(page) == resized


def test_insert_gap_an_empty_selection_and_a_bare_gap(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/text?length=12&steps=2")
    box = page.locator(PROMPT_BOX)
    box.fill("The cat ___ on the mat.")
    bare = page.get_by_role("spinbutton", name=re.compile(r"^Gap 1:"))
    expect(bare).to_have_value("12")
    expect(page.locator("#infill-gaps li").first).to_contain_text("blanks (length)")

    page.get_by_role("button", name="Selection → gap").click()  # nothing selected: said politely, nothing changed
    expect(page.locator("#infill-status")).to_have_attribute("role", "status")
    expect(page.locator("#infill-status")).to_contain_text("Select some words in the prompt first")
    expect(box).to_have_value("The cat ___ on the mat.")

    select(page, len("The cat ___ on the mat."), len("The cat ___ on the mat."))  # the caret at the end
    page.get_by_role("button", name="Insert gap").focus()
    page.keyboard.press("Enter")  # keyboard-usable
    expect(box).to_have_value("The cat ___ on the mat. ___{8}")
    expect(page.locator("#infill-gaps li")).to_have_count(2)
    expect(page.get_by_role("spinbutton", name=re.compile(r"^Gap 2:"))).to_have_value("8")

    bare.fill("3")  # resizing a bare gap writes a size
    expect(box).to_have_value("The cat ___{3} on the mat. ___{8}")
    expect(page.locator("#infill-gaps li").first).not_to_contain_text("(length)")
    assert url_prompt(page) == "The cat ___{3} on the mat. ___{8}"


def test_the_editor_is_on_the_text_page_only(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/race")
    assert page.locator("#infill").count() == 0
    expect(page.locator("#remask-note")).to_be_visible()
