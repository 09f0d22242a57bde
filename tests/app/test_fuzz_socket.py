"""Hypothesis over a real socket: whatever a client sends, it gets frames or one readable error, a proper
close code, never a hang, and the server stays up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.app.live import Live, live_server

fields = st.sampled_from(
    [
        "prompt",
        "length",
        "steps",
        "strategy",
        "temperature",
        "seed",
        "remask",
        "digit",
        "sampler",
        "guidance",
        "block_length",
        "extra",
    ]
)
values = st.none() | st.booleans() | st.integers(-5, 300) | st.floats(allow_nan=False) | st.text(max_size=20)
requests = st.dictionaries(fields, values, max_size=5).map(json.dumps)
raw = st.one_of(requests, st.text(max_size=200), st.binary(max_size=40), st.sampled_from(["NaN", "{", "[]", "null"]))


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with live_server(max_length=16, max_text_steps=8, max_image_steps=8, max_messages_per_second=50) as server:
        yield server


async def send_one(url: str, message: str | bytes) -> tuple[list[dict], int | None]:
    async with websockets.connect(url, max_size=None) as ws:
        received: list[dict] = []
        try:
            await ws.send(message)
            async for m in ws:
                received.append(json.loads(m))
        except websockets.ConnectionClosed:
            pass
        return received, ws.close_code


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["text", "image"]), message=raw)
def test_fuzz_raw_messages_over_the_socket(live: Live, kind: str, message: str | bytes) -> None:
    received, code = asyncio.run(asyncio.wait_for(send_one(live.ws(kind), message), 10))
    types = [m["type"] for m in received]
    if code == 1000:
        assert types[-1] == "done" and set(types[:-1]) <= {"frame", "queued"}
    else:
        assert types == ["error"] and received[0]["message"], (code, received)
        assert code in (1003, 1008, 1009)
        assert "Traceback" not in received[0]["message"]
