"""Outgoing messages: what the engine queues and the websocket route sends, whatever the demo (no HTML
notices here: those are `app.render.notices`, so the engine never imports templating).

Each message is one `Rendered`: the same JSON message twice, once with a `content` field holding the HTML
fragment (what htmx's hx-ws swaps into the page) and once without (for `?format=json` clients). The JSON is
serialised in the engine's render thread; the HTML variant is rendered on first need and kept (the engine
asks for it in the render thread while an html client watches the job, so a json-only run never runs
Jinja, and a later html client of a cached json-only run still gets it). Either way each message is
serialised once and shared by every subscriber: the event loop only sends finished strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


class Rendered:
    """One outgoing message: `json` (JSON text, for ?format=json) and `html` (the same JSON text with the
    "content" fragment for htmx), the latter rendered by `make_html` on first access and then kept."""

    __slots__ = ("_html", "_make_html", "json", "type")

    def __init__(self, type: str, json: str, *, html: str | None = None, make_html: Callable[[], str] | None = None):
        assert html is not None or make_html is not None
        self.type = type  # "frame" | "done" | "queued" | "error"
        self.json = json
        self._html = html
        self._make_html = make_html

    @property
    def html(self) -> str:
        html = self._html
        if html is None:
            make = self._make_html
            if make is None:  # another thread rendered it meanwhile (it sets _html before clearing this)
                return self._html  # type: ignore[return-value]
            html = make()  # two threads may both get here: they render equal strings, either one is kept
            self._html = html
            self._make_html = None  # drop the frame it was rendered from
        return html

    @property
    def html_ready(self) -> bool:
        return self._html is not None

    @property
    def nbytes(self) -> int:
        """Memory held. A pending HTML variant is counted as the JSON's length again (about what the frame it
        will be rendered from holds); the engine renders a run's HTML before it caches and counts the run."""
        html = self._html
        return len(self.json) + (len(html) if html is not None else len(self.json)) + 64

    def __repr__(self) -> str:
        return f"Rendered({self.type!r}, {self.json[:60]!r}..., html_ready={self.html_ready})"


# A producer yields each message ready (`Rendered`) or as a zero-argument callable that renders it: the
# engine runs the callables in its render thread, so the sampler thread goes straight on to the next step.
Deferred = Callable[[], Rendered]


def dump_json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def with_content(plain: str, content: str, swap: dict[str, str]) -> str:
    """`plain` (a dumped object) with "content" (and `swap`) appended: byte for byte what dumping
    `{**data, "content": content, **swap}` gives."""
    return plain[:-1] + "," + dump_json({"content": content, **swap})[1:]


def pack(data: dict[str, Any], content: Callable[[], str], **swap: str) -> Rendered:
    """Serialise `data` now; render the HTML message (`content()` appended) only when someone asks for it."""
    plain = dump_json(data)
    return Rendered(data["type"], plain, make_html=lambda: with_content(plain, content(), swap))
