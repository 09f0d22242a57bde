"""Change a word and rework the text, in a real browser: pick an alternative in the inspector, rework, see the
before/after marks; by keyboard alone; and in a 960x540 slide embed (the stand-in models, fast)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.app.live import Live

BASE = "length=16&steps=8&seed=3"


def finish(page: Any) -> None:
    page.wait_for_selector("#notice.done", timeout=30_000)


def test_use_an_alternative_from_the_inspector_rework_and_see_what_changed(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/text?{BASE}&autoplay=1")
    finish(page)
    page.click("[data-act=end]")
    chips = page.locator("#frames .frame:not(.placeholder) .canvas .tok:not(.fixed)")
    chips.nth(5).click()
    use = page.locator("#inspector button.use").first
    expect(use).to_be_visible()
    alternative = page.locator("#inspector li:has(button.use) .w").first.inner_text()
    use.click()
    word = page.locator("#rework-word")
    expect(word).to_be_focused()
    expect(word).to_have_value(alternative.strip())
    expect(page.locator("#rework-at")).to_have_value("5")
    page.select_option("#rework-redo", "window")
    page.fill("#rework-window", "2")
    page.locator("#rework button[type=submit]").first.click()
    page.wait_for_url("**/text?*edit_at=5*")
    finish(page)
    result = page.locator(".rework-result")
    expect(result).to_contain_text("Word 5 changed")
    expect(result.locator(".before-after mark.edited")).to_have_count(2)  # before and after
    expect(result.locator(".changed").first).to_be_visible()
    expect(page.locator(".rework-note")).to_contain_text("Reworking word 5")
    assert page.console_errors == []


def test_the_edit_by_keyboard_alone_then_raced_against_the_twin(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/text?{BASE}&autoplay=1")
    finish(page)
    page.focus("#rework-at")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # word 2
    page.keyboard.press("Tab")
    page.keyboard.type("sad")
    race = page.locator("#rework button[formaction=race]")
    race.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/race?*edit_word=sad*")
    finish(page)
    table = page.locator(".rework-lanes")
    expect(table).to_contain_text("Diffusion")
    expect(table.locator("tbody tr")).to_have_count(2)
    assert page.console_errors == []


def test_a_rework_fits_the_slide_embed(browser: Any, live: Live) -> None:
    context = browser.new_context(viewport={"width": 960, "height": 540})
    page = context.new_page()
    page.goto(f"{live.http}/embed/text?{BASE}&edit_at=3&edit_word=sad&autoplay=1&result=1")  # the slide shows the result
    page.wait_for_selector("#notice.done", timeout=30_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 960
    expect(page.locator(".rework-result mark.edited").first).to_be_visible()
    # the form stays inside the embed: its actions are relative
    assert page.locator("#rework").get_attribute("action") == "text"
    context.close()


def test_a_reworked_race_on_a_phone_scrolls_its_table_not_the_page(browser: Any, live: Live) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{live.http}/race?{BASE}&edit_at=3&edit_word=sad&autoplay=1")
    page.wait_for_selector("#notice.done", timeout=30_000)
    expect(page.locator(".rework-lanes tbody tr")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()
