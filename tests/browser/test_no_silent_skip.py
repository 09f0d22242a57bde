"""Without Chromium the browser tests skip on a laptop, but fail when CI is set: never a silent green CI run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.settings import REPO_ROOT

# Any browser test will do: the session's `browser` fixture decides before the test runs.
ONE_BROWSER_TEST = "tests/browser/test_player.py::test_reduced_motion_autoplay_shows_the_result_without_animating"


def run_without_chromium(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(REPO_ROOT / "no-such-dir")  # `shutil.which("chromium")` finds nothing
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", ONE_BROWSER_TEST, "-p", "no:cacheprovider", "-q", "-rfEs"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_chromium_fails_the_browser_tests_when_ci_is_set() -> None:
    result = run_without_chromium("true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Debian chromium is not installed" in result.stdout and "CI is set" in result.stdout
    assert "1 error" in result.stdout and "skipped" not in result.stdout


@pytest.mark.parametrize("ci", [None, "false"])  # CI=false is not CI (tests/ci.py)
def test_missing_chromium_skips_the_browser_tests_outside_ci(ci: str | None) -> None:
    result = run_without_chromium(ci)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout and "Debian chromium is not installed" in result.stdout
