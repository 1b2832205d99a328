"""The open loop against a stand-in API that stalls: arrivals keep their timetable, latency counts
from each arrival's due time, and arrivals beyond the in-flight cap are dropped and counted."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from orderflow.tools.bench.customers import Customer
from orderflow.tools.bench.load import OrderLoad
from orderflow.tools.bench.mix import OrderMix
from orderflow.tools.bench.samples import DROPPED, Recorder


def stalling_api(stall_until: float) -> web.Application:
    """Answers nothing before `stall_until` (monotonic), then 202 at once."""

    async def place(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(max(0.0, stall_until - time.monotonic()))
        return web.json_response({"id": str(uuid.uuid4())}, status=202)

    app = web.Application()
    app.router.add_post("/api/v1/orders", place)
    return app


async def run_open_loop(stall: float, orders: int, max_in_flight: int) -> Recorder:
    recorder = Recorder()
    async with (
        TestServer(stalling_api(recorder.started + stall)) as server,
        aiohttp.ClientSession(str(server.make_url(""))) as client,
    ):
        mix = OrderMix(["A", "B"], 1, (1, 2), 1, 0.0, 0.0, seed=1)
        load = OrderLoad(client, [Customer("c", {})], mix, recorder)
        await load.open_loop(rate=100, orders=orders, duration=None, max_in_flight=max_in_flight)
    return recorder


async def test_a_stall_shows_as_latency_from_the_due_time() -> None:
    recorder = await run_open_loop(stall=0.3, orders=40, max_in_flight=1000)
    by_index = {s.index: s for s in recorder.samples}
    assert len(recorder.accepted) == 40
    # Due at 0.0 s and 0.2 s, both answered at 0.3 s: they waited 0.3 s and 0.1 s.
    assert by_index[0].latency >= 0.29
    assert 0.08 <= by_index[20].latency < by_index[0].latency
    # Sends kept the timetable while nothing was answered (no coordinated omission): a closed
    # loop would have sent them up to the whole stall late; half of it leaves room for a loaded
    # machine's scheduling.
    assert all(s.sent - s.intended < 0.15 for s in recorder.samples)


async def test_arrivals_beyond_the_in_flight_cap_are_dropped_and_counted() -> None:
    recorder = await run_open_loop(stall=0.3, orders=20, max_in_flight=5)
    dropped = [s for s in recorder.samples if s.error == DROPPED]
    assert len(recorder.samples) == 20
    assert recorder.dropped == len(dropped) > 0
    assert len(recorder.accepted) + len(dropped) == 20
