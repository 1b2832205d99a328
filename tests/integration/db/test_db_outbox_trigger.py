"""Database and embedded broker in one SQLite file: an outbox row is published by the writer's own
commit (the outbox trigger), with nothing left for the relay; elsewhere the relay's job stays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from orderflow.adapters.broker.embedded.broker import EmbeddedBroker
from orderflow.adapters.db.migrate import migrate
from orderflow.bootstrap import build_broker, build_database, build_storage
from orderflow.config import Settings
from orderflow.ports.broker import ConsumerSpec, OutgoingMessage
from orderflow.ports.storage import Storage

TOPIC = "orders.test"


def _message(n: int) -> OutgoingMessage:
    return OutgoingMessage(TOPIC, f"order-{n}", f"00000000-0000-0000-0000-{n:012d}", b"%d" % n)


@asynccontextmanager
async def _pipeline(settings: Settings) -> AsyncIterator[tuple[Storage, EmbeddedBroker]]:
    db = build_database(settings, answers_clients=False)
    await migrate(db)
    storage = build_storage(db)
    broker = build_broker(settings)
    assert isinstance(broker, EmbeddedBroker)
    await broker.connect()
    try:
        yield storage, broker
    finally:
        await broker.close()
        await storage.dispose()


async def _outbox_ids(storage: Storage) -> list[str]:
    async with storage.read() as reads:
        return [row.message.message_id for row in await reads.outbox.oldest(100)]


async def test_in_one_file_a_commit_publishes_its_outbox_rows(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    async with _pipeline(settings) as (storage, broker):
        await broker.declare(ConsumerSpec("readers", (TOPIC,)))
        await broker.declare(ConsumerSpec("others", ("orders.elsewhere",)))
        sent = [_message(n) for n in range(5)]
        async with storage.write() as tx:
            await tx.outbox.add(sent)
        rolled_back = _message(99)
        try:
            async with storage.write() as tx:
                await tx.outbox.add([rolled_back])
                raise RuntimeError("the change is abandoned")
        except RuntimeError:
            pass

        consumer = await broker.consumer(ConsumerSpec("readers", (TOPIC,)))
        got = await consumer.fetch(10, 0.1)
        other = await broker.consumer(ConsumerSpec("others", ("orders.elsewhere",)))

        assert [(d.topic, d.key, d.message_id, d.payload) for d in got] == [
            (m.topic, m.key, m.message_id, m.payload) for m in sent
        ]
        assert await other.fetch(10, 0.05) == []
        assert await _outbox_ids(storage) == []  # nothing left for the relay


async def test_an_expired_ephemeral_group_gets_nothing_from_the_trigger(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    async with _pipeline(settings) as (storage, broker):
        await broker.declare(ConsumerSpec("gone", (TOPIC,), expires_after=0.01))
        await broker.declare(ConsumerSpec("alive", (TOPIC,), expires_after=60.0))
        await broker.run(lambda conn: conn.execute("UPDATE ephemeral_groups SET last_seen = 0"))
        await broker.run(
            lambda conn: conn.execute(
                "UPDATE ephemeral_groups SET last_seen = 1e12 WHERE grp = 'alive'"
            )
        )

        async with storage.write() as tx:
            await tx.outbox.add([_message(1)])

        groups = await broker.run(
            lambda conn: [g for (g,) in conn.execute("SELECT grp FROM deliveries")]
        )
        assert groups == ["alive"]


async def test_with_a_broker_file_of_its_own_the_rows_wait_for_the_relay(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url=f"embedded://{tmp_path}/broker.db")
    async with _pipeline(settings) as (storage, broker):
        await broker.declare(ConsumerSpec("readers", (TOPIC,)))
        sent = [_message(n) for n in range(3)]
        async with storage.write() as tx:
            await tx.outbox.add(sent)

        assert await _outbox_ids(storage) == [m.message_id for m in sent]
