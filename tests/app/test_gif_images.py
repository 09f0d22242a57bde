"""GIF frames of the grid, the samplers side by side and the image race (app.export.gif_images), drawn from the JSON
frames of real runs of the fake models over the websocket: one image a frame, one size a run, the pictures where
the layout puts them, and a GIF Pillow reads back frame for frame."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageSequence

from app.export.gif import ACCENT, BAD, HOLD_LAST_MS, LANE_GAP, LANE_PAD, PAD, SCALE, encode_gif, frame_ms
from app.export.gif_images import (
    LANE_HEAD_H,
    SMALL,
    TILE,
    TILE_GAP,
    TOP,
    grid_images,
    image_race_images,
    samplers_images,
)
from models.image.race_frames import AUTOREGRESSIVE
from tests.app.live import Live, exchange, run

Renderer = Callable[[Sequence[dict[str, Any]]], Iterator[Image.Image]]
SIZE = 28
# Short runs: the samplers' lanes finish at different frames (the DPM-Solver++ first), the race with the stroke.
RUNS: dict[str, tuple[Renderer, dict[str, Any]]] = {
    "image/grid": (grid_images, {"digit": 4, "steps": 6, "seed": 3}),
    "image/samplers": (samplers_images, {"ddpm_steps": 12, "ddim_steps": 6, "dpm_steps": 3, "seed": 1}),
    "race/image": (image_race_images, {"digit": 2, "steps": 10, "mistake": True}),
}


@pytest.fixture(scope="module")
def runs(live: Live) -> dict[str, list[dict[str, Any]]]:
    """Each kind's frames as the JSON socket sends them (one run each, shared by the module's tests)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, (_, request) in RUNS.items():
        result = run(exchange(live.ws(kind), request))
        assert result.code == 1000 and result.last["type"] == "done", result.last
        out[kind] = result.frames
    return out


def pixels(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(image.crop(box).convert("L"))


def digit(png: str, scale: int) -> np.ndarray:
    """A 28x28 PNG (or a sheet of them) as the GIF should show it: each pixel a scale x scale square."""
    array = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("L"))
    return array.repeat(scale, axis=0).repeat(scale, axis=1)


def rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


@pytest.mark.parametrize("kind", RUNS)
def test_one_image_a_frame_all_of_one_size_and_the_run_moves(runs: dict[str, list[dict[str, Any]]], kind: str) -> None:
    frames = runs[kind]
    images = list(RUNS[kind][0](frames))
    assert len(frames) > 3 and len(images) == len(frames)
    assert {image.mode for image in images} == {"RGB"}
    assert len({image.size for image in images}) == 1
    width, _ = images[0].size
    assert width <= 1000  # fits a slide or a chat window
    first, last = np.asarray(images[0]), np.asarray(images[-1])
    changed = (first != last).any(axis=2).mean()
    assert changed > 0.05, f"only {changed:.1%} of the pixels changed from the first frame to the last"


def test_the_grid_shows_each_sheets_tiles_at_its_scale_and_labels_only_after_step_0(
    runs: dict[str, list[dict[str, Any]]],
) -> None:
    frames = runs["image/grid"]
    images = list(grid_images(frames, sampler="ddim", digit=4))
    last, sheet = images[-1], digit(frames[-1]["xt_png"], SMALL)
    assert sheet.shape == (4 * TILE, 4 * TILE)
    assert np.array_equal(pixels(last, (PAD, TOP, PAD + TILE, TOP + TILE)), sheet[:TILE, :TILE])  # top-left tile
    # the second tile starts after the gap, not right after the first
    second = pixels(last, (PAD + TILE + TILE_GAP, TOP, PAD + 2 * TILE + TILE_GAP, TOP + TILE))
    assert np.array_equal(second, sheet[:TILE, TILE : 2 * TILE])
    # the fake reads two tiles of 16 as a 5: their labels are red, as on the page (never at step 0: nothing read)
    red = [int((np.asarray(image) == rgb(BAD)).all(axis=2).sum()) for image in images]
    assert red[0] == 0 and all(count > 0 for count in red[1:])
    assert images[0].size == next(grid_images(frames[:1])).size  # the request's keywords change no size


def test_the_samplers_lanes_keep_their_last_picture_once_finished(runs: dict[str, list[dict[str, Any]]]) -> None:
    frames = runs["image/samplers"]
    images = list(samplers_images(frames))
    names = [lane["lane"] for lane in frames[0]["lanes"]]
    assert names == ["ddpm", "ddim", "dpm"]
    lane_w = (images[0].width - 2 * PAD - 2 * LANE_GAP) // 3
    top = TOP + LANE_PAD + LANE_HEAD_H

    def xt_box(index: int) -> tuple[int, int, int, int]:
        left = PAD + index * (lane_w + LANE_GAP) + LANE_PAD
        return left, top, left + TILE, top + TILE

    finished = next(k for k, f in enumerate(frames) if f["lanes"][2]["finished"])
    assert finished < len(frames) - 1 and not frames[finished]["lanes"][0]["finished"]  # DPM-Solver++ ends first
    final = digit(frames[finished]["lanes"][2]["xt_png"], SMALL)
    for image in images[finished:]:
        assert np.array_equal(pixels(image, xt_box(2)), final)
    # the DDPM lane still moves after the DPM-Solver++ one has finished
    assert not np.array_equal(pixels(images[finished], xt_box(0)), pixels(images[-1], xt_box(0)))
    # a lane's picture missing from a frame: the lane keeps the last one it had
    held = [json.loads(json.dumps(frame)) for frame in frames]
    held[-1]["lanes"][2]["xt_png"] = None
    assert np.array_equal(pixels(list(samplers_images(held))[-1], xt_box(2)), final)


def test_the_race_draws_the_cursor_on_the_next_pixel_and_outlines_the_stroke(runs: dict[str, list[dict[str, Any]]]) -> None:
    frames = runs["race/image"]
    images = list(image_race_images(frames))
    top = TOP + LANE_PAD + LANE_HEAD_H
    left = PAD + LANE_PAD  # the autoregressive lane comes first
    assert frames[0]["lanes"][0]["lane"] == AUTOREGRESSIVE
    k = len(frames) // 2
    cursor = frames[k]["lanes"][0]["cursor"]
    assert cursor is not None
    row, column = divmod(cursor, SIZE)
    x, y = left + column * SCALE + SCALE // 2, top + row * SCALE + SCALE // 2
    assert images[k].getpixel((x, y)) == rgb(ACCENT)
    assert frames[-1]["lanes"][0]["cursor"] is None and images[-1].getpixel((x, y)) != rgb(ACCENT)
    # the forced stroke: outlined in both lanes, in every frame that carries it
    assert all(lane["forced"] for lane in frames[-1]["lanes"])
    assert (np.asarray(images[-1]) == rgb(BAD)).all(axis=2).sum() > 100


@pytest.mark.parametrize("kind", RUNS)
def test_the_frames_encode_to_a_gif_pillow_reads_frame_for_frame(runs: dict[str, list[dict[str, Any]]], kind: str) -> None:
    frames = runs[kind]
    durations = [frame_ms(1.0)] * (len(frames) - 1) + [HOLD_LAST_MS]
    data = encode_gif(RUNS[kind][0](frames), durations)
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.format == "GIF" and gif.size == next(RUNS[kind][0](frames[:1])).size
        # one GIF frame a run frame, each timed as the player shows it, the last held
        assert [frame.info["duration"] for frame in ImageSequence.Iterator(gif)] == durations
