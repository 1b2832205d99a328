"""A message the broker buries because its lease ran out on the last attempt (a worker that
crashed every time) still fails its order: the dead-letter sweep reports it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

from orderflow.adapters.db.orders import NewOrder
from orderflow.adapters.db.outbox import SqlOutbox
from orderflow.bootstrap import (
    build_broker,
    build_database,
    consumer_spec,
    declare_topology,
    prepare,
)
from orderflow.config import Settings
from orderflow.domain import messages as m
from orderflow.domain.money import Money
from orderflow.domain.pricing import CatalogEntry, price_order
from orderflow.envelope import decode
from orderflow.services.api.intake import OrderIntake
from orderflow.services.relay.relay import OutboxRelay
from orderflow.services.runtime.dead_letters import DeadLetterWatcher


async def test_a_message_buried_by_lease_expiry_fails_its_order(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_attempts=1, ack_wait=0.2)
    await prepare(settings)
    db, broker = build_database(settings), build_broker(settings)
    await broker.connect()
    try:
        await declare_topology(broker, settings)
        intake = OrderIntake(db)
        intake.start()
        catalog = {"MUG-WHT": CatalogEntry("MUG-WHT", "Mug", Money(1200, "USD"))}
        order_id = str(uuid.uuid4())
        order = NewOrder(
            order_id,
            str(uuid.uuid4()),
            price_order([("MUG-WHT", 1)], catalog),
            "tok_visa",
            {},
            None,
            None,
        )
        await intake.submit(order, None)
        await intake.stop()
        await OutboxRelay(db, broker).publish_batch()

        # An inventory worker takes the command and dies holding it, on its only attempt.
        worker = await broker.consumer(consumer_spec("inventory", settings))
        [taken] = await worker.fetch(10, 1.0)
        assert decode(taken.payload) == m.ReserveStock(order_id, (m.Line("MUG-WHT", 1),))
        await asyncio.sleep(0.3)
        assert await worker.fetch(10, 0.2) == []  # buried, not handed out again
        [buried] = await broker.dead_letters("inventory")
        assert buried.message_id == taken.message_id

        watcher = DeadLetterWatcher(db, broker, ["inventory", "payment", "orders"])
        assert await watcher.sweep() == 1
        assert await watcher.sweep() == 0  # each dead letter is reported once
        async with db.read() as conn:
            published = [decode(row.message.payload) for row in await SqlOutbox(conn).oldest(100)]
        failed = [msg for msg in published if isinstance(msg, m.ProcessingFailed)]
        assert [dataclasses.replace(f, reason="") for f in failed] == [
            m.ProcessingFailed(order_id, "inventory", "")
        ]
        await worker.close()
    finally:
        await broker.close()
        await db.dispose()
