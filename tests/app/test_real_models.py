"""The served product on the committed checkpoints: what `make run` loads, streamed through the engine and the
renderer in both wire formats, reproducible with the cache off, and a tampered checkpoint refused loudly."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.backends.interface import Backends
from app.backends.load import load_backends
from app.backends.real import RealImage, RealImageRace
from app.main import create_app
from app.settings import Settings
from tests.app.live import Live, exchange, live_server, run, strip_timing

TEXT = {"prompt": "Once upon a time", "length": 12, "steps": 4, "seed": 7}
# 10 steps: at 5, one final guess in ten is a blur every classifier reads under 50% (measured on 30 runs: 3 for
# the scoring classifier, 3 for the meter's); this one reads 0.88 (scoring) and 0.82 (the meter's) at 10
IMAGE = {"digit": 7, "sampler": "ddim", "steps": 10, "seed": 3}
pytestmark = pytest.mark.real_model  # the committed checkpoints, loaded in place or from a copy


@pytest.fixture(scope="module")
def real() -> Backends:
    return load_backends(Settings())  # the default settings: models/checkpoints/*


@pytest.fixture(scope="module")
def live(real: Backends) -> Iterator[Live]:
    with live_server(backends=real, use_torch=True, cache_bytes=0) as server:  # no replay: every run computed
        yield server


def test_default_settings_load_every_committed_checkpoint(real: Backends) -> None:
    assert real.untrained == [] and real.problems == {}
    assert (real.text.name, real.image.name, real.race.name) == ("text-diffusion", "image-ddpm", "text-diffusion vs text-ar")
    assert real.text.trained and real.image.trained and real.race.trained
    image, image_race = real.image, real.image_race
    assert isinstance(image, RealImage) and isinstance(image_race, RealImageRace)
    assert image.model.classifier is not None  # the scoring classifier, and the meter's own narrow one
    assert image.model.meter is not None and image.model.meter_classifier is image.model.meter
    assert image.model.meter.config.width < image.model.classifier.config.width
    assert image_race.trained and image_race.name == "image-ddpm vs image-pixel-ar"
    assert image_race.image is image.model  # the race shares the loaded DDPM, never loads it twice


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_a_text_run_on_the_real_model(live: Live, fmt: str) -> None:
    result = run(exchange(live.ws("text", fmt), TEXT))
    assert result.code == 1000 and result.types[-1] == "done"
    frames = result.frames
    assert [f["step"] for f in frames] == [0, 1, 2, 3, 4] and [f["masked"] for f in frames][::4] == [12, 0]
    assert result.last["text"].startswith("Once upon a time") and "___" not in result.last["text"]
    assert len(result.last["decisions"]["events"]) == 12
    if fmt == "html":
        assert all('class="tok' in f["content"] for f in frames)
        assert 'class="decision-map"' in result.last["content"]
    else:
        assert all("content" not in m for m in result.messages)


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_an_image_run_on_the_real_model(live: Live, fmt: str) -> None:
    result = run(exchange(live.ws("image", fmt), IMAGE))
    assert result.code == 1000 and result.types[-1] == "done"
    frames = result.frames
    assert [f["step"] for f in frames] == list(range(11))
    assert len({f["x0_png"] for f in frames}) == 11  # the guess changes at every step
    final = frames[-1]["digit_probabilities"]
    assert max(range(10), key=final.__getitem__) == 7 and final[7] > 0.5  # the trained classifier agrees: a 7
    if fmt == "html":
        assert all("data:image/png;base64," in f["content"] for f in frames)


def test_the_same_seed_gives_the_same_frames_with_the_cache_off(live: Live) -> None:
    for kind, request in (("text", TEXT), ("image", IMAGE), ("race", {**TEXT, "length": 8})):
        started = live.engine.jobs_started
        first = run(exchange(live.ws(kind), request))
        second = run(exchange(live.ws(kind), request))
        assert live.engine.jobs_started == started + 2 and live.engine.cached == 0  # computed twice, not replayed
        if kind == "race":
            for a, b in zip(first.frames, second.frames, strict=True):
                assert [{k: v for k, v in lane.items() if k not in ("ms_per_pass", "wall_ms")} for lane in a["lanes"]] == [
                    {k: v for k, v in lane.items() if k not in ("ms_per_pass", "wall_ms")} for lane in b["lanes"]
                ]
        else:
            assert strip_timing(first.frames) == strip_timing(second.frames)


def test_a_checkpoint_that_does_not_match_its_sha256_is_refused_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "checkpoints"
    shutil.copytree(Settings().checkpoint_dir, folder)
    weights = folder / "text-diffusion" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit pattern in the last weight
    weights.write_bytes(bytes(data))
    settings = Settings(checkpoint_dir=folder)
    with caplog.at_level(logging.WARNING, logger="theater.models"):
        backends = load_backends(settings)
    assert "text-diffusion" in backends.untrained and "image-ddpm" not in backends.untrained
    assert "does not match its sha256" in backends.problems["text-diffusion"]
    assert any("UNTRAINED" in r.message and "sha256" in r.message for r in caplog.records)
    with TestClient(create_app(settings, loader=lambda _s: backends)) as client:
        ready = client.get("/readyz").json()
        assert "text-diffusion" in ready["untrained"] and "sha256" in ready["problems"]["text-diffusion"]
        page = client.get("/text").text
        assert "<strong>UNTRAINED</strong>" in page and "text-diffusion" in page


def test_the_image_lab_on_the_real_model(live: Live) -> None:
    """Inpainting keeps the kept pixels to the grey level, end to end; denoising a real digit from a low t comes back
    to it (the classifier reads the original's label)."""
    from models.image.data import held_out_digit
    from models.image.masks import encode_mask, preset_mask

    inpaint = run(
        exchange(live.ws("image"), {"source": 21, "mask": encode_mask(preset_mask("left")), "steps": 20, "digit": None})
    )
    assert inpaint.code == 1000 and inpaint.last["type"] == "done"
    assert inpaint.last["kept_max_change"] <= 1 and inpaint.last["forward_passes"] > 20  # RePaint's jumps cost passes
    assert any(f.get("note") == "jump back" for f in inpaint.frames)
    label = held_out_digit(30)[1]
    denoise = run(exchange(live.ws("image"), {"source": 30, "start_t": 250, "steps": 20, "digit": None}))
    assert denoise.code == 1000 and denoise.frames[0]["timestep"] <= 250
    final = denoise.frames[-1]["digit_probabilities"]
    assert max(range(10), key=final.__getitem__) == label and denoise.last["drift"] < 5


def test_without_its_own_classifier_the_meter_reads_with_the_scoring_one(tmp_path: Path) -> None:
    """A missing (or tampered) digit-meter is said on /readyz, and costs only speed: the DDPM still loads trained."""
    checkpoints = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
    for name in ("image-ddpm", "digit-classifier"):
        shutil.copytree(checkpoints / name, tmp_path / name)
    from app.backends.load import _load_image

    problems: dict[str, str] = {}
    image = _load_image(Settings(checkpoint_dir=tmp_path), problems)
    assert image.trained and image.model.meter is None and image.model.meter_classifier is image.model.classifier
    assert set(problems) == {"digit-meter"} and "the scoring classifier reads for the meter" in problems["digit-meter"]
