"""Websockets against a real uvicorn on a free port, with fake fast models."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from tests.app.live import Live, exchange, live_server, run, strip_timing


@pytest.fixture(scope="module")
def live() -> Live:
    with live_server(step_seconds=0.002) as server:
        yield server


def test_text_frames_stream_then_done(live: Live) -> None:
    result = run(exchange(live.ws("text"), {"length": 12, "steps": 6, "seed": 5}))
    assert result.types == ["frame"] * 7 + ["done"]
    assert [f["step"] for f in result.frames] == list(range(7))
    assert [f["masked"] for f in result.frames][0] == 12 and result.frames[-1]["masked"] == 0
    assert all(f["total"] == 6 for f in result.frames)
    assert result.last["text"].startswith("Once upon a time") and "___" not in result.last["text"]
    assert result.code == 1000


def test_first_frame_arrives_long_before_the_last_step_is_computed() -> None:
    with live_server(step_seconds=0.03) as live:

        async def main() -> tuple[float, int, float]:
            async with websockets.connect(live.ws("text")) as ws:
                started = time.perf_counter()
                await ws.send(json.dumps({"length": 20, "steps": 20}))
                first = json.loads(await ws.recv())
                assert first["step"] == 0
                first_at = time.perf_counter() - started
                steps_when_first = live.text.steps_run
                async for _ in ws:
                    pass
                return first_at, steps_when_first, time.perf_counter() - started

        first_at, steps_when_first, total = run(main())
        assert steps_when_first < 5  # the first frame did not wait for the run
        assert first_at < total / 4 and total > 0.5


def test_html_format_carries_the_fragment_for_htmx(live: Live) -> None:
    result = run(exchange(live.ws("text", fmt="html"), {"length": 4, "steps": 2}))
    assert result.types == ["frame", "frame", "frame", "done"]
    assert all(m["content"].startswith("<article") for m in result.frames)
    assert result.last["target"] == "#notice" and "Done" in result.last["content"]


def test_same_seed_gives_identical_frames(live: Live) -> None:
    request = {"length": 10, "steps": 5, "seed": 11, "strategy": "random", "remask": "loop"}
    first = run(exchange(live.ws("text"), request))
    live.engine.clear_cache()
    second = run(exchange(live.ws("text"), request))
    other = run(exchange(live.ws("text"), {**request, "seed": 12}))
    assert strip_timing(first.frames) == strip_timing(second.frames)
    assert strip_timing(first.frames) != strip_timing(other.frames)


def test_image_stream(live: Live) -> None:
    result = run(exchange(live.ws("image"), {"digit": None, "steps": 5, "sampler": "dpm", "seed": 3}))
    assert result.types == ["frame"] * 6 + ["done"]
    frame = result.frames[2]
    assert {"xt_png", "x0_png", "timestep", "noise_level", "step", "total"} <= set(frame)
    assert result.frames[0]["xt_png"] != result.frames[-1]["xt_png"] and result.last["png"]


def test_cache_hit_replays_identical_frames_without_compute(live: Live) -> None:
    request = {"length": 8, "steps": 4, "seed": 77}
    first = run(exchange(live.ws("text"), request))
    calls = live.text.calls
    second = run(exchange(live.ws("text"), request))
    assert live.text.calls == calls
    assert first.messages == second.messages  # recorded ms_per_step included


def test_identical_concurrent_requests_are_computed_once() -> None:
    with live_server(step_seconds=0.02) as live:

        async def main() -> list:
            return await asyncio.gather(*(exchange(live.ws("text"), {"length": 8, "steps": 8}) for _ in range(6)))

        results = run(main())
        assert live.text.calls == 1
        assert all(r.messages == results[0].messages for r in results) and results[0].last["type"] == "done"


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        ("not json", 1008, "not valid JSON"),
        ('{"steps": "ten"}', 1008, "steps should be a valid integer"),
        ('{"length": 257}', 1008, "over the limit"),
        ('{"temperature": NaN}', 1008, "NaN"),
        ('{"nope": 1}', 1008, "unknown field 'nope'"),
        ('{"prompt": "\\u0007"}', 1008, "control character"),
        (b"\x00\x01", 1003, "binary"),
        ('{"prompt": "' + "x" * 5000 + '"}', 1009, "too big"),
    ],
)
def test_bad_input_gets_an_error_and_a_close_code_and_the_server_stays_up(
    live: Live, payload: str | bytes, code: int, words: str
) -> None:
    result = run(exchange(live.ws("text"), payload))
    assert result.types == ["error"] and words in result.last["message"]
    assert result.code == code and result.reason
    assert run(exchange(live.ws("text"), {"length": 2, "steps": 1})).last["type"] == "done"


def test_invalid_utf8_closes_1007_and_the_server_stays_up(live: Live) -> None:
    async def main() -> int | None:
        async with websockets.connect(live.ws("text")) as ws:
            await ws.send(b'{"prompt": "\xff\xfe"}', text=True)
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert run(main()) == 1007
    assert run(exchange(live.ws("text"), {"length": 2, "steps": 1})).last["type"] == "done"


def test_a_second_request_while_one_runs_is_answered_and_the_run_continues() -> None:
    with live_server(step_seconds=0.02) as live:

        async def main() -> list[dict]:
            async with websockets.connect(live.ws("text")) as ws:
                await ws.send(json.dumps({"length": 10, "steps": 10}))
                await ws.recv()
                await ws.send(json.dumps({"length": 10, "steps": 10, "seed": 1}))
                return [json.loads(m) async for m in ws]

        messages = run(main())
        errors = [m for m in messages if m["type"] == "error"]
        assert len(errors) == 1 and "one request per connection" in errors[0]["message"]
        assert messages[-1]["type"] == "done"


def test_unknown_format_is_refused(live: Live) -> None:
    result = run(exchange(f"ws://127.0.0.1:{live.port}/ws/text?format=xml", {}))
    assert result.code == 1008 and "unknown format" in result.last["message"]
