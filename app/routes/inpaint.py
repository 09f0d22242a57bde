"""`/image/inpaint`: paint over part of a held-out digit, then let the DDPM fill it (RePaint).

The page shows test digit no. `index` under a 28x28 mask the reader paints with a pointer or touch (static/mask.js),
or picks from presets (links that work without script: top half, left half, centre, random blocks). "Fill" is a form
to `/image?source=…&mask=…&autoplay=1`, where the image page streams the RePaint steps; the mask travels in its wire
form (`models.image.masks`), so the URL reproduces the run. Python decides which pixels a preset fills and whether a
mask from the URL is valid; the script only paints and writes the wire form.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.demos.registry import IMAGE_OPTIONS
from app.render.image import png_base64
from app.routes.deps import BackendsDep, SettingsDep
from app.routes.forward import DEFAULT_INDEX, DIGITS, ForwardError, number_in_range
from app.web.templating import templates
from models.image.data import held_out_digit
from models.image.masks import MASK_CHARS, PIXELS, PRESETS, SIDE, MaskError, decode_mask, encode_mask, preset_mask

router = APIRouter(tags=["pages"])

PRESET_LABELS = {"top": "Top half", "left": "Left half", "centre": "Centre", "blocks": "Random blocks"}
DEFAULT_PRESET = "top"


def preset_links(index: int, seed: int) -> list[SimpleNamespace]:
    """Each preset as the mask it fills (for the script) and as a link (for everyone)."""
    links = []
    for name in PRESETS:
        mask = encode_mask(preset_mask(name, seed=seed))
        href = f"/image/inpaint?{urlencode({'index': index, 'mask': mask})}"
        links.append(SimpleNamespace(name=name, label=PRESET_LABELS[name], mask=mask, href=href))
    return links


@router.get("/image/inpaint", response_class=HTMLResponse)
def inpaint_page(request: Request, settings: SettingsDep, backends: BackendsDep) -> HTMLResponse:
    query = dict(request.query_params)
    notes: list[str] = []
    status = 200
    try:
        index = number_in_range(query, "index", DEFAULT_INDEX, DIGITS)
    except ForwardError as error:
        status, index = 422, DEFAULT_INDEX
        notes.append(str(error))
    fill = preset_mask(DEFAULT_PRESET)
    if query.get("mask"):
        try:
            fill = decode_mask(query["mask"])
        except MaskError as error:
            status = 422
            notes.append(f"{error}; showing the {PRESET_LABELS[DEFAULT_PRESET].lower()} preset instead")
    mask = encode_mask(fill)
    image, label = held_out_digit(index)
    context: dict[str, Any] = {
        "embed": False,
        "kind": "image-inpaint",
        "untrained": backends.untrained,
        "notes": notes,
        "index": index,
        "label": label,
        "digits": DIGITS,
        "digit_png": png_base64(image),
        "mask": mask,
        "mask_chars": MASK_CHARS,
        "side": SIDE,
        "pixels": PIXELS,
        "filled": int(fill.sum()),
        "presets": preset_links(index, seed=index),
        "next_url": f"/image/inpaint?{urlencode({'index': (index + 1) % DIGITS, 'mask': mask})}",
        "digit_options": IMAGE_OPTIONS["digit"],
        "max_steps": settings.max_image_steps,
    }
    return templates.TemplateResponse(request, "inpaint.html", context, status_code=status)
