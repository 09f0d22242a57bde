"""The one definition of "running in CI", for the tests that skip locally when a tool is missing (Chromium for
tests/browser, redis-server and nginx for tests/app/test_redis_scale.py) but must fail in CI instead: never a
silent green CI run with them skipped."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

NOT_CI = ("", "0", "false", "no")  # CI set to one of these (any case, spaces around ignored) means not CI


def in_ci() -> bool:
    """CI is set to anything but empty, 0, false or no, as CI services set it (CI=true, CI=1)."""
    return os.environ.get("CI", "").strip().lower() not in NOT_CI


def skip_unless_ci(reason: str) -> NoReturn:
    """Skip the test for `reason` (something it needs is missing); in CI, fail it instead."""
    if in_ci():
        pytest.fail(f"{reason}; CI is set, so the test fails instead of skipping", pytrace=False)
    pytest.skip(reason)
