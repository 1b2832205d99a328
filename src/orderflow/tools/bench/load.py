"""The load itself: open-loop arrivals on a timetable, or closed-loop workers flat out.

Open loop: arrival i is due at `i / rate` seconds and is sent then, whatever happened to earlier
ones; a slow server shows up as latency from that due time, never as a slower send rate. When
`max_in_flight` submissions are already unanswered, an arrival is dropped by the client and
counted, so a stalled server cannot make the generator silently send less than it reports.
Closed loop: `connections` workers each send the next order when their last one is answered;
this finds the ceiling, and its latency is counted from the actual send.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, suppress

import aiohttp
import orjson

from orderflow.tools.bench.customers import Customer
from orderflow.tools.bench.mix import Arrival, OrderMix
from orderflow.tools.bench.samples import Recorder, Sample

ORDERS = "/api/v1/orders"


class OrderLoad:
    def __init__(
        self,
        client: aiohttp.ClientSession,
        customers: list[Customer],
        mix: OrderMix,
        recorder: Recorder,
        idempotency_keys: bool = True,
    ) -> None:
        self._client = client
        self._idempotency_keys = idempotency_keys
        self._customers = customers
        self._mix = mix
        self.recorder = recorder

    async def open_loop(
        self, rate: float, orders: int | None, duration: float | None, max_in_flight: int
    ) -> None:
        count = orders if orders is not None else int(rate * (duration or 0.0))
        intervals = (i / rate for i in range(count))
        await _on_timetable(intervals, self.recorder, max_in_flight, self._submit_next)

    async def closed_loop(self, workers: int, orders: int | None, duration: float | None) -> None:
        counter = itertools.count()

        async def worker() -> None:
            while True:
                now = self.recorder.now()
                if duration is not None and now >= duration:
                    return
                index = next(counter)
                if orders is not None and index >= orders:
                    return
                await self._submit(self._mix.next(index), now)

        await asyncio.gather(*(worker() for _ in range(workers)))

    async def _submit_next(self, index: int, intended: float) -> Sample | None:
        return await self._submit(self._mix.next(index), intended)

    async def _submit(self, arrival: Arrival, intended: float) -> Sample:
        customer = self._customers[arrival.customer]
        headers = customer.headers
        if self._idempotency_keys:
            headers = {**headers, "Idempotency-Key": arrival.idempotency_key}
        sample = Sample(arrival.index, arrival.customer, intended)
        await send(
            self._client.post(ORDERS, json=arrival.body, headers=headers),
            sample,
            self.recorder,
            accepted=202,
        )
        return sample


async def status_reads(
    client: aiohttp.ClientSession,
    customers: list[Customer],
    rate: float,
    recorder: Recorder,
    stop: asyncio.Event,
) -> None:
    """A storefront's order page: each read lists one customer's newest orders, in turn, on a
    timetable of `rate` reads per second until `stop` is set (open loop, like the orders)."""
    if rate <= 0:
        return

    async def read(index: int, intended: float) -> Sample | None:
        if stop.is_set():
            return None
        sample = Sample(index, index % len(customers), intended)
        headers = customers[sample.customer].headers
        await send(
            client.get(ORDERS, params={"limit": "20"}, headers=headers),
            sample,
            recorder,
            accepted=200,
        )
        return sample

    due = (i / rate for i in itertools.count())
    await _on_timetable(due, recorder, 256, read, stop)


async def send(
    request: AbstractAsyncContextManager[aiohttp.ClientResponse],
    sample: Sample,
    recorder: Recorder,
    accepted: int,
) -> None:
    """Send one request and record its outcome; the body is always read so the keep-alive
    connection goes back to the pool."""
    recorder.begin(sample)
    try:
        async with request as response:
            body = await response.read()
            sample.status = response.status
            if response.content_type in ("application/json", "application/problem+json"):
                if response.status == accepted:
                    sample.order_id = _order_id(body)
                elif response.status >= 400:
                    sample.title = _title(body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        sample.error = f"transport: {type(exc).__name__}"
    recorder.end(sample, ok=sample.status == accepted)


def _title(body: bytes) -> str | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    title = doc.get("title") if isinstance(doc, dict) else None
    return str(title) if title is not None else None


def _order_id(body: bytes) -> str | None:
    doc = orjson.loads(body)
    oid = doc.get("id") if isinstance(doc, dict) else None
    return str(oid) if oid is not None else None


async def _on_timetable(
    due: Iterator[float],
    recorder: Recorder,
    max_in_flight: int,
    fire: Callable[[int, float], Coroutine[None, None, Sample | None]],
    stop: asyncio.Event | None = None,
) -> None:
    tasks: set[asyncio.Task[Sample | None]] = set()
    for index, at in enumerate(due):
        wait = at - recorder.now()
        if wait > 0:
            if stop is None:
                await asyncio.sleep(wait)
            else:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        if stop is not None and stop.is_set():
            break
        if recorder.in_flight >= max_in_flight:
            recorder.drop(Sample(index, -1, at))
            continue
        task = asyncio.create_task(fire(index, at))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
