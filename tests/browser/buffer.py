"""What the player buffered: it keeps every frame of a run off the page (only the shown one is in the DOM), as
HTML and message data, and exposes them read-only as `window.theaterPlayer.frames`. Functions, not
expressions: the page's CSP forbids eval, and Playwright evaluates an expression with it."""

from __future__ import annotations

from typing import Any

COUNT = "() => window.theaterPlayer ? window.theaterPlayer.frames.length : 0"

# Each buffered frame's HTML parsed (off the page) and `selector` looked up in it.
_QUERY = """([selector, attribute]) => window.theaterPlayer.frames.map((frame) => {
  const template = document.createElement('template');
  template.innerHTML = frame.html;
  const root = template.content.firstElementChild;
  const el = root.matches(selector) ? root : root.querySelector(selector);
  if (!el) return null;
  return attribute ? el.getAttribute(attribute) : el.textContent;
})"""


def frame_count(page: Any) -> int:
    return page.evaluate(COUNT)


def frame_texts(page: Any, selector: str = ".canvas") -> list[str | None]:
    """The text of `selector` in every buffered frame, in step order."""
    return page.evaluate(_QUERY, [selector, None])


def frame_attributes(page: Any, selector: str, attribute: str) -> list[str | None]:
    return page.evaluate(_QUERY, [selector, attribute])


def live_elements(page: Any) -> int:
    """Every element of the page now (the DOM size a long run must keep small)."""
    return page.evaluate("() => document.getElementsByTagName('*').length")


def frame_html(page: Any) -> list[str]:
    """Every buffered frame's HTML, in step order."""
    return page.evaluate("() => window.theaterPlayer.frames.map((frame) => frame.html)")
