"""The pipeline's backlog on SQLite and PostgreSQL: what it counts, and that guarding submissions
with it adds no statement to placing an order (issue 11: the hot path stays as it was)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import pytest
from sqlalchemy import event

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import migrate
from orderflow.adapters.db.storage import SqlStorage
from orderflow.domain import messages as m
from orderflow.domain.money import Money
from orderflow.domain.pricing import CatalogEntry
from orderflow.messaging.envelope import encode
from orderflow.services.orders.backlog import BacklogGate
from orderflow.services.orders.intake import OrderIntake
from orderflow.services.orders.placing import OrderRequest, place_order
from orderflow.services.orders.transitions import apply_events

SKU = "MUG-WHT"


class Prices:
    async def entries(self, skus: Iterable[str]) -> Mapping[str, CatalogEntry]:
        return {SKU: CatalogEntry(SKU, "Mug", Money(1200, "USD"))}


def request() -> OrderRequest:
    return OrderRequest(str(uuid.uuid4()), None, [(SKU, 1)], "tok_visa", {})


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate(database)
    yield database
    await database.dispose()


async def backlog(storage: SqlStorage) -> int:
    async with storage.read() as reads:
        return await reads.backlog.size()


async def test_the_backlog_is_unpublished_outbox_rows_plus_orders_in_flight(db: Database) -> None:
    storage = SqlStorage(db)
    intake = OrderIntake(storage)
    intake.start()
    try:
        placed = [await place_order(intake, Prices(), request()) for _ in range(3)]
    finally:
        await intake.stop()
    # Three pending orders, each with a ReserveStock and a status announcement in the outbox.
    assert await backlog(storage) == 3 + 6
    async with storage.write() as tx:
        await tx.outbox.remove([r.id for r in await tx.outbox.oldest(100)])
    assert await backlog(storage) == 3
    # An order the pipeline owes nothing more (rejected) leaves the backlog.
    done = placed[0].accepted.order_id
    async with storage.write() as tx:
        await apply_events(tx.orders, [m.StockRejected(done, "out of stock")], actor="test")
        await tx.outbox.add([encode(m.CommitStock("unrelated"))])
    assert await backlog(storage) == 2 + 1


async def test_a_guarded_submission_runs_exactly_the_statements_of_an_unguarded_one(
    db: Database,
) -> None:
    storage = SqlStorage(db)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    gate = BacklogGate(storage, bound=1_000_000, interval=3600)
    await gate.start()  # its first reading, before counting starts
    intake = OrderIntake(storage)
    intake.start()
    engines = {db.writer.sync_engine, db.reader.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        await place_order(intake, Prices(), request())  # warm-up (customer row, caches)
        statements.clear()
        for _ in range(20):
            await place_order(intake, Prices(), request())
        unguarded = len(statements)
        statements.clear()
        for _ in range(20):
            await place_order(intake, Prices(), request(), gate)
        guarded = len(statements)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
        await intake.stop()
        await gate.stop()
    assert guarded == unguarded, (guarded, unguarded)
