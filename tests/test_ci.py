"""tests/ci.py: which values of CI count as CI, and a missing tool skipping outside CI but failing in it."""

from __future__ import annotations

import pytest

from tests.ci import in_ci, skip_unless_ci


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("", False),
        ("  ", False),
        ("0", False),
        ("false", False),
        ("False", False),
        (" FALSE ", False),
        ("no", False),
        ("No", False),
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("github-actions", True),
    ],
)
def test_what_counts_as_ci(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_a_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=r"^redis-server is not installed$"):
        skip_unless_ci("redis-server is not installed")


def test_a_missing_tool_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"^redis-server is not installed; CI is set, so the test fails"):
        skip_unless_ci("redis-server is not installed")
