"""A payment provider outage opens its circuit, and the payment consumer then fetches nothing
until the provider is tried again, so the outage spends no attempts: an order whose attempts
would otherwise run out against the open circuit is still paid once the provider answers.

The real workers in-process (embedded broker, SQLite, the simulated provider behind the timeout
and breaker, wired by bootstrap). `tok_timeout` makes the provider hang for 2 s on the order's
first call (and every call behind it); with a 0.2 s timeout the first attempt and the retry that
queues behind it time out, which opens the circuit (threshold 2) for 2 s. A message has three
attempts, and retries come back within milliseconds (10-20 ms): without the hold-off the third
would meet the open circuit and be the last.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from structlog.testing import capture_logs

from orderflow.bootstrap import WORKERS, WorkerSet, build_database, build_storage, prepare
from orderflow.config import Settings
from orderflow.domain.order import SETTLED_STATUSES
from orderflow.domain.pricing import price_order
from orderflow.ports.orders import NewOrder
from orderflow.ports.storage import Storage
from orderflow.services.orders.intake import OrderIntake


async def _place(storage: Storage, token: str) -> str:
    async with storage.read() as reads:
        catalog = await reads.catalog.entries()
    priced = price_order([("MUG-WHT", 1)], catalog)
    order = NewOrder(str(uuid.uuid4()), str(uuid.uuid4()), priced, token, {}, None, None)
    intake = OrderIntake(storage)
    intake.start()
    try:
        await intake.submit(order, None)
    finally:
        await intake.stop()
    return order.id


async def _settled_status(storage: Storage, order_id: str) -> str:
    """Polls the database: the pipeline offers no event for "this order is done"."""
    while True:
        async with storage.read() as reads:
            row = await reads.queries.get(order_id, None)
        if row is not None and row["status"] in SETTLED_STATUSES:
            return str(row["status"])
        await asyncio.sleep(0.05)


async def test_an_open_circuit_spends_no_attempts(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        max_attempts=3,
        payment_timeout=0.2,
        retry_base_delay=0.01,
        retry_max_delay=0.02,
        payment_breaker_threshold=2,
        payment_breaker_reset=2.0,
    )
    await prepare(settings)
    storage = build_storage(build_database(settings))
    workers = WorkerSet(settings, WORKERS, with_relay=True)
    with capture_logs() as logs:
        running = asyncio.create_task(workers.run())
        try:
            order_id = await _place(storage, "tok_timeout")
            async with asyncio.timeout(60):
                status = await _settled_status(storage, order_id)
        finally:
            workers.stop.set()
            await running
            await storage.dispose()
    events = [e["event"] for e in logs]
    assert "circuit opened: failing fast" in events  # the outage really opened the circuit
    assert "circuit closed" in events
    assert "dead-lettered" not in events
    assert status == "confirmed"
