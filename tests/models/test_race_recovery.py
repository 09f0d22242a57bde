"""The image race's recovery measurement: the Wilson interval, the file's round trip, the CLI (seeded, its limits at
their edges) and the committed file against the committed checkpoints and data."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from models.checkpoints import CHECKPOINT_ROOT, save_weights, sha256_of, write_json, write_manifest
from models.image.data import EVALUATION_MNIST
from models.image.evaluate_race import main as evaluate_main
from models.image.evaluate_race import parse_args, region_ink
from models.image.pixel_ar import PixelARConfig, untrained_pixel_ar
from models.image.race import mistake_step, signal_at
from models.image.race_recovery import (
    RECOVERY_FILE,
    Outcome,
    Recovery,
    TimingRow,
    load_recovery,
    recovery_from_dict,
    recovery_to_dict,
    wilson_interval,
)
from models.image.request import MISTAKE_TIMINGS

# ---------------------------------------------------------------------------------------------------------
# The interval


def test_the_wilson_interval_matches_known_values_and_is_sound_at_the_ends() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0 and math.isclose(high, 0.27753, abs_tol=1e-5)  # not the normal approximation's [0, 0]
    low, high = wilson_interval(10, 10)
    assert math.isclose(low, 0.72247, abs_tol=1e-5) and high == 1
    low, high = wilson_interval(35, 100)
    assert math.isclose(low, 0.26364, abs_tol=1e-5) and math.isclose(high, 0.44746, abs_tol=1e-5)
    assert wilson_interval(1, 1)[1] == 1 and wilson_interval(0, 1)[0] == 0


@pytest.mark.parametrize(("successes", "trials", "message"), [(0, 0, "at least one trial"), (-1, 5, "0..5"), (6, 5, "0..5")])
def test_the_wilson_interval_refuses_impossible_counts(successes: int, trials: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wilson_interval(successes, trials)


def test_an_outcome_carries_its_interval_and_round_trips() -> None:
    outcome = Outcome.measured(35, 100, 0.861234)
    assert outcome.rate == 0.35 and outcome.ink_left == 0.8612
    assert (outcome.low, outcome.high) == tuple(round(v, 4) for v in wilson_interval(35, 100))
    assert Outcome.from_dict(outcome.to_dict()) == outcome


# ---------------------------------------------------------------------------------------------------------
# The file and the CLI


def _made_up() -> Recovery:
    outcome = Outcome.measured(7, 10, 0.5)
    rows = tuple(
        TimingRow(timing, share, round(share * 50), 999 - round(share * 1000), 0.5, outcome, outcome)
        for timing, share in MISTAKE_TIMINGS.items()
    )
    return Recovery(50, 1.0, 1, 0, {"image-pixel-ar": "0" * 64}, {"ddpm": outcome, "pixel_ar": outcome}, rows,
                    "train10k", tuple(0.1 * d for d in range(10)), 0.45, "python -m models.image.evaluate_race")  # fmt: skip


def test_a_recovery_round_trips_through_its_dict_and_refuses_an_unknown_timing() -> None:
    data = recovery_to_dict(_made_up())
    assert recovery_from_dict(json.loads(json.dumps(data))) == _made_up()
    data["timings"][0]["timing"] = "soon"
    with pytest.raises(ValueError, match="unknown timing 'soon'"):
        recovery_from_dict(data)


def _tiny_pixel_checkpoint(folder: Path) -> Path:
    config = PixelARConfig(levels=4, channels=8, layers=3, kernel=5)
    folder.mkdir()
    write_json(folder / "config.json", config.to_dict())
    save_weights(untrained_pixel_ar(config, seed=0).network, folder / "model.safetensors")
    write_manifest(folder)
    return folder


@pytest.mark.real_model
@pytest.mark.slow
def test_the_cli_writes_every_timing_and_the_same_file_for_the_same_seed(tmp_path: Path) -> None:
    pixel = _tiny_pixel_checkpoint(tmp_path / "pixel")
    files = [tmp_path / "a" / "recovery.json", tmp_path / "b" / "recovery.json"]  # the command names the file
    for out in files:
        argv = ["--pixel-ar", str(pixel), "--per-digit", "1", "--ddim-steps", "2", "--out", str(out), "--seed", "3"]
        evaluate_main(argv)
    assert files[0].read_bytes() == files[1].read_bytes()  # seeded: nothing of the run's moment in it
    recovery = load_recovery(files[0])
    assert recovery is not None and [row.timing for row in recovery.timings] == list(MISTAKE_TIMINGS)
    for row in recovery.timings:
        assert row.ddpm.samples == row.pixel_ar.samples == 10 and row.step == mistake_step(2, row.timing)
        assert row.pixel_ar.ink_left == 1.0  # a painted pixel is final: the stroke stays whole
        assert row.pixel_ar == recovery.timings[0].pixel_ar  # the PixelCNN's stroke does not move with the timing
    assert set(recovery.baseline) == {"ddpm", "pixel_ar"} and recovery.seed == 3 and recovery.per_digit == 1
    assert recovery.checkpoints["image-pixel-ar"] == sha256_of(pixel / "model.safetensors")
    assert recovery.command.startswith("python -m models.image.evaluate_race --pixel-ar pixel --per-digit 1")
    assert recovery_from_dict(recovery_to_dict(recovery)) == recovery


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--per-digit", "0"], "--per-digit must be between 1 and 1000, got 0"),
        (["--per-digit", "1001"], "--per-digit must be between 1 and 1000, got 1001"),
        (["--ddim-steps", "1"], "--ddim-steps must be at least 2"),
        (["--seed", "-1"], "--seed must be between 0 and 4294967295"),
    ],
)
def test_the_cli_refuses_settings_past_its_limits(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_the_cli_accepts_its_limits() -> None:
    assert parse_args(["--per-digit", "1", "--ddim-steps", "2"]).per_digit == 1
    assert parse_args(["--per-digit", "1000", "--seed", "4294967295"]).per_digit == 1000


def test_a_missing_file_reads_as_none_and_a_changed_one_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "recovery.json"
    assert load_recovery(path) is None
    data = recovery_to_dict(_made_up())
    path.write_text(json.dumps(data))
    first = load_recovery(path)
    assert first is not None and first.seed == data["seed"]
    data["seed"] = data["seed"] + 1
    path.write_text(json.dumps(data))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later modification time
    second = load_recovery(path)
    assert second is not None and second.seed == first.seed + 1


# ---------------------------------------------------------------------------------------------------------
# The committed file


@pytest.fixture(scope="module")
def committed():
    recovery = load_recovery()
    assert recovery is not None, f"{RECOVERY_FILE} is missing: python -m models.image.evaluate_race"
    return recovery


@pytest.mark.real_model
def test_the_committed_file_measures_the_committed_checkpoints(committed) -> None:
    assert committed.checkpoints == {
        "image-pixel-ar": sha256_of(CHECKPOINT_ROOT / "image-pixel-ar" / "model.safetensors"),
        "image-ddpm": sha256_of(CHECKPOINT_ROOT / "image-ddpm" / "unet" / "model.safetensors"),
        "digit-classifier": sha256_of(CHECKPOINT_ROOT / "digit-classifier" / "model.safetensors"),
    }, "a checkpoint changed since the measurement: re-run python -m models.image.evaluate_race"
    assert committed.command.startswith("python -m models.image.evaluate_race")


def test_the_committed_file_has_every_timing_with_at_least_100_samples_a_model_and_its_intervals(committed) -> None:
    assert [row.timing for row in committed.timings] == list(MISTAKE_TIMINGS)
    outcomes = [*committed.baseline.values(), *(o for row in committed.timings for o in (row.ddpm, row.pixel_ar))]
    assert set(committed.baseline) == {"ddpm", "pixel_ar"}
    for outcome in outcomes:
        assert outcome.samples >= 100 and 0 <= outcome.matches <= outcome.samples and 0 <= outcome.ink_left <= 1
        assert (outcome.low, outcome.high) == tuple(round(v, 4) for v in wilson_interval(outcome.matches, outcome.samples))


@pytest.mark.real_model
def test_the_committed_timings_are_where_the_race_puts_the_stroke(committed) -> None:
    from models.image.model import load_image_model

    ddpm = load_image_model(CHECKPOINT_ROOT / "image-ddpm")
    for row in committed.timings:
        assert row.share == MISTAKE_TIMINGS[row.timing] and row.step == mistake_step(committed.steps, row.timing)
        t, signal = signal_at(ddpm, committed.steps, row.timing)
        assert row.timestep == t and row.signal == round(signal, 4)


def test_the_committed_region_ink_is_what_real_digits_put_there(committed) -> None:
    *per_class, overall = region_ink(EVALUATION_MNIST, committed.region_split)
    assert committed.region_ink == tuple(per_class) and committed.region_ink_all == overall
    assert min(committed.region_ink) > 0  # every class puts some ink there: the fact the race's description states
