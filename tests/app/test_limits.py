"""Limits and load behaviour over real sockets: rate, idle, per-address, origin, queue, busy, disconnect."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.app.live import exchange, live_server, run


def test_messages_per_second_at_the_edge() -> None:
    with live_server(step_seconds=0.05, max_messages_per_second=3) as live:

        async def burst(count: int) -> tuple[list[dict[str, Any]], int | None]:
            async with websockets.connect(live.ws("text")) as ws:
                await ws.send(json.dumps({"length": 30, "steps": 30, "seed": count}))
                for _ in range(count - 1):
                    await ws.send("{}")
                messages: list[dict[str, Any]] = []
                try:
                    async for raw in ws:
                        messages.append(json.loads(raw))
                except websockets.ConnectionClosed:
                    pass
                return messages, ws.close_code

        messages, code = run(burst(3))  # at the limit: answered, run completes
        assert messages[-1]["type"] == "done" and code == 1000
        messages, code = run(burst(4))  # one over: refused
        assert code == 1008
        assert any(m["type"] == "error" and "too many messages" in m["message"] for m in messages)


def test_idle_connection_is_told_and_closed() -> None:
    with live_server(idle_seconds=0.3) as live:
        result = run(exchange(live.ws("text"), None))
        assert result.code == 1008 and "no request received within 0.3 seconds" in result.last["message"]
        assert 0.25 < result.total < 2


def test_connections_per_client_address_at_the_edge() -> None:
    with live_server(max_connections_per_client=3) as live:

        async def main() -> None:
            held = [await websockets.connect(live.ws("text")) for _ in range(3)]  # at the limit: all open
            extra = await exchange(live.ws("text"), {"length": 2, "steps": 1})
            assert extra.code == 1008 and "too many connections from your address" in extra.last["message"]
            await held[0].close()
            await asyncio.sleep(0.05)
            again = await exchange(live.ws("text"), {"length": 2, "steps": 1})
            assert again.last["type"] == "done"
            for ws in held[1:]:
                await ws.send(json.dumps({"length": 2, "steps": 1}))
                assert [json.loads(m)["type"] async for m in ws][-1] == "done"

        run(main())


def test_origin_check_before_accept() -> None:
    with live_server(allowed_origins="https://slides.example.org, https://other.example") as live:
        request = {"length": 2, "steps": 1}
        own = f"http://127.0.0.1:{live.port}"
        assert run(exchange(live.ws("text"), request, origin=own)).last["type"] == "done"
        assert run(exchange(live.ws("text"), request, origin="https://slides.example.org")).last["type"] == "done"
        assert run(exchange(live.ws("text"), request)).last["type"] == "done"  # no Origin: a notebook
        for evil in ("https://evil.example", "null", f"http://127.0.0.1:{live.port + 1}"):
            with pytest.raises(InvalidStatus) as caught:
                run(exchange(live.ws("text"), request, origin=evil))
            assert caught.value.response.status_code == 403


def test_queue_positions_then_busy_with_1013() -> None:
    with live_server(step_seconds=0.03, max_running=1, max_queue=1) as live:

        async def main() -> None:
            first = asyncio.create_task(exchange(live.ws("text"), {"length": 10, "steps": 10, "seed": 1}))
            await asyncio.sleep(0.1)
            second = asyncio.create_task(exchange(live.ws("text"), {"length": 4, "steps": 4, "seed": 2}))
            await asyncio.sleep(0.1)
            busy = await exchange(live.ws("text"), {"length": 4, "steps": 4, "seed": 3})
            assert busy.code == 1013 and busy.types == ["error"] and "busy" in busy.last["message"]
            a, b = await first, await second
            assert a.last["type"] == "done" and "queued" not in a.types
            assert b.types[0] == "queued" and b.messages[0]["position"] == 1 and b.last["type"] == "done"

        run(main())


def test_disconnect_mid_run_stops_compute_and_frees_the_slot() -> None:
    with live_server(step_seconds=0.03, max_running=1) as live:

        async def main() -> None:
            async with websockets.connect(live.ws("text")) as ws:
                await ws.send(json.dumps({"length": 100, "steps": 100}))
                for _ in range(3):
                    await ws.recv()
            await asyncio.sleep(0.2)
            stopped_at = live.text.steps_run
            assert live.engine.running == 0 and stopped_at < 12
            await asyncio.sleep(0.15)
            assert live.text.steps_run == stopped_at
            # the freed slot serves the next client straight away
            started = time.perf_counter()
            result = await exchange(live.ws("text"), {"length": 3, "steps": 3, "seed": 9})
            assert result.last["type"] == "done" and "queued" not in result.types
            assert time.perf_counter() - started < 1

        run(main())


def test_load_smoke_twenty_clients_all_complete() -> None:
    with live_server(step_seconds=0.002, max_running=2, max_queue=64) as live:

        async def main() -> list:
            return await asyncio.gather(
                *(exchange(live.ws("text" if i % 2 else "image"), {"steps": 8, "seed": i}) for i in range(20))
            )

        results = run(main())
        assert all(r.last["type"] == "done" and r.code == 1000 for r in results)
        assert live.text.calls + live.image.calls == 20


def test_a_lecture_hall_of_100_distinct_clients_is_all_served_with_etas() -> None:
    with live_server(step_seconds=0.001, max_running=2) as live:  # default max_wait_seconds (120 s)

        async def main() -> list:
            return await asyncio.gather(*(exchange(live.ws("text"), {"length": 16, "steps": 8, "seed": i}) for i in range(100)))

        results = run(main())
        assert all(r.code == 1000 and r.last["type"] == "done" for r in results)
        assert live.engine.jobs_started == 100  # distinct seeds: 100 runs computed, none refused
        queued = [m for r in results for m in r.messages if m["type"] == "queued"]
        assert queued and all(m["eta_seconds"] >= 1 and m["position"] >= 1 for m in queued)


def test_busy_past_the_wait_bound_says_when_to_come_back() -> None:
    with live_server(step_seconds=0.05, max_running=1, max_wait_seconds=0.5) as live:

        async def main() -> None:
            first = asyncio.create_task(exchange(live.ws("text"), {"length": 20, "steps": 20, "seed": 1}))
            await asyncio.sleep(0.1)  # the only slot is taken; the initial estimate is 2 s a job
            busy = await exchange(live.ws("text"), {"length": 4, "steps": 4, "seed": 2})
            assert busy.code == 1013 and busy.types == ["error"]
            assert re.search(r"would wait about \d+ s .* limit of 0.5 s; try again in \d+ s", busy.last["message"])
            assert (await first).last["type"] == "done"

        run(main())
