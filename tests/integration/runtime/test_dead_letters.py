"""Dead letters become failure reports, each exactly once: a message the broker buries because its
lease ran out on the last attempt (a worker that crashed every time) still fails its order through
the sweep; what a consumer dead-lettered and reported itself is not reported again; a report that
fails in turn is not reported at all."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from orderflow.bootstrap import (
    Runner,
    build_broker,
    build_database,
    build_runner,
    build_storage,
    consumer_spec,
    declare_topology,
    prepare,
)
from orderflow.config import Settings
from orderflow.domain import messages as m
from orderflow.domain.money import Money
from orderflow.domain.pricing import CatalogEntry, price_order
from orderflow.messaging.envelope import decode, encode
from orderflow.ports.broker import Broker, Consumer, DeadLetter, Delivery
from orderflow.ports.orders import NewOrder
from orderflow.ports.storage import Storage
from orderflow.services.orders.intake import OrderIntake
from orderflow.services.orders.recovery import DeadLetters
from orderflow.services.relay.relay import OutboxRelay
from orderflow.services.runtime.dead_letters import DeadLetterWatcher


def settings_in(tmp_path: Path, **overrides: Any) -> Settings:
    """The broker in a file of its own: these tests read the reports a sweep or a consumer
    writes to the outbox, which the one-file shape's trigger would publish at commit."""
    broker_url = f"embedded:///{tmp_path}/broker.db"
    return Settings(data_dir=tmp_path, broker_url=broker_url, **overrides)


async def test_a_message_buried_by_lease_expiry_fails_its_order(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, max_attempts=1, ack_wait=0.2)
    await prepare(settings)
    db, broker = build_storage(build_database(settings)), build_broker(settings)
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
        async with db.read() as reads:
            published = [decode(row.message.payload) for row in await reads.outbox.oldest(100)]
        failed = [msg for msg in published if isinstance(msg, m.ProcessingFailed)]
        assert [dataclasses.replace(f, reason="") for f in failed] == [
            m.ProcessingFailed(order_id, "inventory", "")
        ]
        await worker.close()
    finally:
        await broker.close()
        await db.dispose()


@dataclasses.dataclass
class Stage:
    """One consumer group of the pipeline on the embedded engine, driven a round at a time."""

    db: Storage
    broker: Broker
    runner: Runner
    consumer: Consumer

    async def round(self) -> int:
        """Relay the outbox, then let the consumer take and settle what is there."""
        await OutboxRelay(self.db, self.broker).publish_batch()
        deliveries = await self.consumer.fetch(100, 0.3)
        if deliveries:
            await self.consumer.settle(await self.runner.process(deliveries))
        return len(deliveries)


@contextlib.asynccontextmanager
async def stage(group: str, settings: Settings) -> AsyncIterator[Stage]:
    await prepare(settings)
    db, broker = build_storage(build_database(settings)), build_broker(settings)
    await broker.connect()
    try:
        await declare_topology(broker, settings)
        runner = build_runner(group, settings, db, broker)
        consumer = await broker.consumer(consumer_spec(group, settings))
        yield Stage(db, broker, runner, consumer)
        await consumer.close()
    finally:
        await broker.close()
        await db.dispose()


async def test_a_failure_report_that_fails_is_not_reported_again(tmp_path: Path) -> None:
    """An event about an order this database does not have (say, after a restore) is dead-
    lettered, and so is its failure report, once: no report about a report, no loop."""
    async with stage("orders", settings_in(tmp_path, max_attempts=1)) as orders:
        await orders.broker.publish([encode(m.StockReserved(str(uuid.uuid4())))])
        rounds = [await orders.round() for _ in range(5)]
        watcher = DeadLetterWatcher(orders.db, orders.broker, ["orders"])
        assert await watcher.sweep() == 0  # the consumer reported what it decided itself
        rounds.append(await orders.round())
        dead = await orders.broker.dead_letters("orders")
    assert rounds == [1, 1, 0, 0, 0, 0]  # the event, then its failure report, then quiet
    assert [type(decode(d.payload)).__name__ for d in dead] == ["StockReserved", "ProcessingFailed"]


async def test_the_sweep_does_not_report_again_what_the_consumer_reported(tmp_path: Path) -> None:
    async with stage("inventory", settings_in(tmp_path)) as inventory:
        # A message inventory cannot handle: a permanent error, dead-lettered at once.
        wrong = encode(m.StockReserved(str(uuid.uuid4())))
        await inventory.broker.publish([dataclasses.replace(wrong, topic=m.INVENTORY_COMMANDS)])
        assert await inventory.round() == 1
        async with inventory.db.read() as reads:
            reports = [decode(r.message.payload) for r in await reads.outbox.oldest(100)]
        swept = await DeadLetterWatcher(inventory.db, inventory.broker, ["inventory"]).sweep()
    assert [type(r).__name__ for r in reports] == ["ProcessingFailed"]
    assert swept == 0


async def test_a_dead_letter_decided_twice_does_not_fail_its_batch(tmp_path: Path) -> None:
    """The settle of a dead letter is lost (a crash right after the commit), so the message comes
    back and is dead-lettered again: that must not fail (its report key is recorded once)."""
    async with stage("inventory", settings_in(tmp_path)) as inventory:
        wrong = encode(m.StockReserved(str(uuid.uuid4())))
        await inventory.broker.publish([dataclasses.replace(wrong, topic=m.INVENTORY_COMMANDS)])
        deliveries = await inventory.consumer.fetch(10, 1.0)
        first = await inventory.runner.process(deliveries)  # committed, never settled
        again = await inventory.runner.process(deliveries)
        await inventory.consumer.settle(again)
        async with inventory.db.read() as reads:
            reports = [decode(r.message.payload) for r in await reads.outbox.oldest(100)]
    assert [type(o).__name__ for _, o in first] == [type(o).__name__ for _, o in again]
    assert [type(o).__name__ for _, o in again] == ["DeadLetter"]
    # The report goes out again, as any redelivered effect's message may; on an order already
    # failed it changes nothing.
    assert [type(r).__name__ for r in reports] == ["ProcessingFailed", "ProcessingFailed"]


async def test_every_dead_letter_is_reported_whatever_the_backlog(tmp_path: Path) -> None:
    """More dead letters than a page: each is reported once, none left behind the first page."""
    async with stage("inventory", settings_in(tmp_path)) as inventory:
        orders = [str(uuid.uuid4()) for _ in range(8)]
        commands = [m.ReserveStock(oid, (m.Line("MUG-WHT", 1),)) for oid in orders]
        await inventory.broker.publish([encode(c) for c in commands])
        taken: list[Delivery] = []
        while len(taken) < len(orders):
            taken += await inventory.consumer.fetch(100, 1.0)
        # Buried by the broker: no consumer loop reported them.
        await inventory.consumer.settle([(d, DeadLetter("poison")) for d in taken])

        watcher = DeadLetterWatcher(inventory.db, inventory.broker, ["inventory"], page_size=3)
        swept = [await watcher.sweep() for _ in range(3)]
        async with inventory.db.read() as reads:
            published = [decode(row.message.payload) for row in await reads.outbox.oldest(100)]

    assert swept == [8, 0, 0]
    failed = sorted(msg.order_id for msg in published if isinstance(msg, m.ProcessingFailed))
    assert failed == sorted(orders)


async def test_a_replayed_message_buried_again_is_reported_again(tmp_path: Path) -> None:
    """A replay forgets the message's failure report: buried again, this time by its lease
    running out (no consumer reports that), the sweep reports it, so its order fails again
    instead of waiting forever."""
    settings = settings_in(tmp_path, max_attempts=1, ack_wait=0.2)
    async with stage("inventory", settings) as inventory:
        wrong = encode(m.StockReserved(str(uuid.uuid4())))
        await inventory.broker.publish([dataclasses.replace(wrong, topic=m.INVENTORY_COMMANDS)])
        assert await inventory.round() == 1  # dead-lettered and reported by the consumer
        [dead] = await inventory.broker.dead_letters("inventory")
        tools = DeadLetters(inventory.broker, inventory.db, ["inventory"])
        assert await tools.replay("inventory", dead.position, actor="test") == "replayed"

        [again] = await inventory.consumer.fetch(10, 1.0)  # taken, never settled
        assert again.message_id == dead.message_id
        deadline = asyncio.get_running_loop().time() + 10
        while not await inventory.broker.dead_letters("inventory"):
            assert asyncio.get_running_loop().time() < deadline
            assert await inventory.consumer.fetch(10, 0.1) == []
        swept = await DeadLetterWatcher(inventory.db, inventory.broker, ["inventory"]).sweep()
    assert swept == 1
