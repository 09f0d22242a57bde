"""Websockets against a real uvicorn on a free port, with fake fast models."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator

import pytest
import websockets

from app.backends.fakes import FakeImage, FakeRace, FakeText
from app.backends.interface import Backends
from models.frames import TextFrame
from models.text.decoding import TextRequest
from tests.app.live import Live, exchange, live_server, run, strip_timing


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with live_server(step_seconds=0.002) as server:
        yield server


def test_text_frames_stream_then_done(live: Live) -> None:
    result = run(exchange(live.ws("text"), {"length": 12, "steps": 6, "seed": 5}))
    assert result.types == ["frame"] * 7 + ["done"]
    assert [f["step"] for f in result.frames] == list(range(7))
    assert result.frames[0]["masked"] == 12 and result.frames[-1]["masked"] == 0
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


def test_an_html_client_replaying_a_run_computed_for_a_json_client_gets_the_fragments(live: Live) -> None:
    request = {"length": 8, "steps": 4, "seed": 78}
    plain = run(exchange(live.ws("text"), request))
    calls = live.text.calls
    html = run(exchange(live.ws("text", fmt="html"), request))
    assert live.text.calls == calls  # a cache hit: the json client's run, its HTML rendered on first need
    assert all(m["content"].startswith('<article class="frame text-frame"') for m in html.frames)
    assert [{k: v for k, v in m.items() if k != "content"} for m in html.frames] == plain.frames
    assert 'class="tok blank sp"' in html.frames[0]["content"] and html.code == 1000


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
        ('{"length": 193}', 1008, "over the limit"),
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


# ---- requests the model cannot serve are the client's errors (1008), never server faults (1011) ----------


def test_prompt_plus_blanks_at_the_models_context_edge() -> None:
    backends = Backends(text=FakeText(context=20), image=FakeImage(), race=FakeRace())
    with live_server(backends=backends, max_length=256) as live:
        fits = run(exchange(live.ws("text"), {"prompt": "a b c", "length": 17, "steps": 2}))
        assert fits.last["type"] == "done" and fits.code == 1000  # 3 prompt tokens + 17 blanks = 20
        calls = live.text.calls
        over = run(exchange(live.ws("text"), {"prompt": "a b c", "length": 18, "steps": 2}))
        assert over.types == ["error"] and over.code == 1008
        assert over.last["message"] == "prompt and blanks need 21 tokens but the model reads at most 20: use length 17 or less"
        assert live.text.calls == calls  # refused before any job started
        # infill: each `___` becomes `length` blanks ("a", " b" + 2 x 9 = 20 fits; 2 x 10 does not)
        assert run(exchange(live.ws("text"), {"prompt": "a ___ b ___", "length": 9, "steps": 2})).code == 1000
        infill = run(exchange(live.ws("text"), {"prompt": "a ___ b ___", "length": 10, "steps": 2}))
        assert infill.code == 1008 and "need 22 tokens" in infill.last["message"] and "length 9 or less" in infill.last["message"]
        assert run(exchange(live.ws("text"), {"length": 2, "steps": 1})).last["type"] == "done"  # still up


class NoContextText:
    """A text backend that does not expose its context: only its sampler can refuse."""

    name, trained, description = "opaque", False, "no context exposed"

    def __init__(self) -> None:
        self.inner = FakeText(context=20)

    def sample(self, request: TextRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[TextFrame]:
        return self.inner.sample(request, should_stop)


def test_a_sampler_refusal_is_an_error_message_and_1008_not_a_server_fault() -> None:
    with live_server(backends=Backends(text=NoContextText(), image=FakeImage(), race=FakeRace())) as live:
        over = run(exchange(live.ws("text"), {"prompt": "a b c", "length": 18, "steps": 2}))
        assert over.types == ["error"] and over.code == 1008
        assert over.last["message"].startswith("prompt and blanks need 21 tokens but the model reads at most 20")
        assert run(exchange(live.ws("text"), {"prompt": "a b c", "length": 17, "steps": 2})).code == 1000


def test_the_default_length_limit_leaves_room_for_a_prompt(live: Live) -> None:
    assert live.app.state.settings.max_length == 192 <= 256 - 64
    at_limit = run(exchange(live.ws("text"), {"prompt": "a", "length": 192, "steps": 1}))
    assert at_limit.last["type"] == "done"
    over = run(exchange(live.ws("text"), {"prompt": "a", "length": 193, "steps": 1}))
    assert over.code == 1008 and "length 193 is over the limit of 192" in over.last["message"]


# ---- message size: the app answers up to ws_max_size, the websocket layer cuts what is larger ------------


def test_a_message_over_the_transport_limit_is_closed_1009_and_the_server_stays_up(live: Live) -> None:
    assert live.server.config.ws_max_size == live.app.state.settings.ws_max_size == 65536
    just_over_app_limit = run(exchange(live.ws("text"), '{"prompt": "' + "x" * 60000 + '"}'))  # < 64 KiB
    assert just_over_app_limit.types == ["error"] and just_over_app_limit.code == 1009
    huge = run(exchange(live.ws("text"), '{"prompt": "' + "x" * 70000 + '"}'))  # > 64 KiB: cut by uvicorn
    assert huge.code == 1009 and huge.messages == []
    assert run(exchange(live.ws("text"), {"length": 2, "steps": 1})).last["type"] == "done"
