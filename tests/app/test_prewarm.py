"""First play is instant: a fresh server computes each demo's default run into the replay cache in the background."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.app.live import exchange, live_server, run


@pytest.mark.slow
def test_a_fresh_server_answers_the_default_runs_from_the_cache() -> None:
    with live_server(step_seconds=0.02, prewarm=True) as live:
        with urllib.request.urlopen(f"{live.http}/readyz", timeout=5) as response:  # ready while prewarming
            assert response.status == 200 and json.loads(response.read())["status"] == "ready"
        assert live.engine.jobs_started >= 1 and live.engine.cached < 6
        deadline = time.monotonic() + 30
        while live.engine.cached < 6:
            assert time.monotonic() < deadline, "prewarm did not finish"
            time.sleep(0.05)
        started, hits = live.engine.jobs_started, live.engine.cache_hits
        for kind in ("text", "image", "race", "race/image", "image/grid", "train"):  # /train's: its recording
            result = run(exchange(live.ws(kind, fmt="html"), {}))  # what each page's Generate sends by default
            assert result.code == 1000 and result.types[-1] == "done"
        assert live.engine.jobs_started == started == 6 and live.engine.cache_hits == hits + 6


def test_prewarm_is_off_when_the_setting_says_so() -> None:
    with live_server(step_seconds=0.0, prewarm=False) as live:
        time.sleep(0.3)
        assert live.engine.jobs_started == 0 and live.engine.cached == 0
