"""The image lab in a real browser: paint a mask with the mouse and Fill; denoise from the forward page's t."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
from playwright.sync_api import expect

from models.image.masks import decode_mask
from tests.app.live import Live
from tests.browser.test_forward import drag_to


def test_paint_a_mask_with_the_mouse_and_fill(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/image/inpaint?index=4")
    expect(page.locator("#mask-status")).to_have_text(re.compile(r"^392 of 784 pixels to fill"))  # the default preset
    page.click("#mask-clear")
    expect(page.locator("#mask-status")).to_contain_text("0 of 784 pixels to fill. Paint at least one")
    expect(page.locator("#fill")).to_be_disabled()

    box = page.locator("#mask-canvas").bounding_box()
    cell = box["width"] / 28
    y = box["y"] + 14.5 * cell  # a stroke along row 14, from column 2 to column 25, with the 3-pixel brush
    page.mouse.move(box["x"] + 2.5 * cell, y)
    page.mouse.down()
    page.mouse.move(box["x"] + 25.5 * cell, y, steps=5)  # few events: the cells between them are filled too
    page.mouse.up()
    expect(page.locator("#mask-status")).to_have_text(re.compile(r"^78 of 784 pixels to fill"))  # 3 rows x 26 columns (1-26)
    mask = parse_qs(urlparse(page.url).query)["mask"][0]  # the address bar keeps the painting
    fill = decode_mask(mask)
    assert fill[13:16, 1:27].all() and fill.sum() == 78

    page.check("input[name=brush-mode][value=erase]")
    page.mouse.click(box["x"] + 13.5 * cell, y)
    expect(page.locator("#mask-status")).to_have_text(re.compile(r"^69 of 784"))  # a 3x3 hole erased

    page.click("#fill")
    expect(page).to_have_url(re.compile(r"/image\?source=4&mask="))
    expect(page.locator("#notice.done")).to_be_visible(timeout=30_000)
    expect(page.locator("#result .lab-drift")).to_contain_text("Kept 715 pixels of test digit no. 4")
    expect(page.locator("#result .lab-drift")).to_contain_text("their largest change is 0 grey levels")
    sent = decode_mask(parse_qs(urlparse(page.url).query)["mask"][0])
    assert np.array_equal(sent, decode_mask(page.locator("input[name=mask]").first.input_value()))
    assert sent.sum() == 69
    assert page.console_errors == []


def test_a_preset_by_keyboard(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/image/inpaint?index=9")
    page.locator("#preset-centre").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#mask-status")).to_have_text(re.compile(r"^196 of 784"))
    assert page.console_errors == []


def test_denoise_from_the_forward_pages_t(page: Any, live: Live) -> None:
    page.goto(f"{live.http}/image/forward?index=5&t=100")
    drag_to(page, 640)
    expect(page.locator("#denoise-start-t")).to_have_value("640")
    page.select_option("#denoise-form select[name=sampler]", "dpm")
    page.click("#denoise")
    expect(page).to_have_url(re.compile(r"/image\?source=5&start_t=640&autoplay=1&sampler=dpm"))
    expect(page.locator("#notice.done")).to_be_visible(timeout=30_000)
    expect(page.locator("#result .lab-drift")).to_contain_text("From test digit no. 5")
    expect(page.locator("#frames .frame:not(.placeholder) img.px.original").first).to_be_attached()
    expect(page.locator(".lab-note")).to_contain_text("Denoising test digit no. 5 from t = 640")
    assert page.console_errors == []
