"""Group commit isolates its orders: when the database refuses one order of a batch, the others
are still committed and answered (on PostgreSQL, which refuses a NUL that SQLite stores)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import migrate
from orderflow.adapters.db.storage import SqlStorage
from orderflow.domain.money import Money
from orderflow.domain.pricing import CatalogEntry, price_order
from orderflow.ports.orders import NewOrder
from orderflow.services.orders.intake import Accepted, OrderIntake
from tests.support.databases import fresh_database, query

CATALOG = {"MUG-WHT": CatalogEntry("MUG-WHT", "Mug", Money(1200, "USD"))}


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


def order(token: str = "tok_visa") -> NewOrder:
    priced = price_order([("MUG-WHT", 1)], CATALOG)
    return NewOrder(str(uuid.uuid4()), str(uuid.uuid4()), priced, token, {}, None, None)


async def test_one_refused_order_does_not_fail_the_rest_of_its_batch(postgres_url: str) -> None:
    db = Database(postgres_url)
    intake = OrderIntake(SqlStorage(db))
    try:
        await migrate(db)
        intake.start()
        good = [order() for _ in range(4)]
        refused = order("tok_visa\x00")  # what validation now stops; the database refuses it
        # Submitted together, so the intake takes them as one batch.
        results = await asyncio.gather(
            *(intake.submit(o, None) for o in [*good[:2], refused, *good[2:]]),
            return_exceptions=True,
        )
    finally:
        await intake.stop()
        await db.dispose()
    assert [r for r in results if not isinstance(r, Accepted)] == [results[2]]
    assert isinstance(results[2], Exception)
    stored = {str(r[0]) for r in await query(postgres_url, "SELECT id FROM orders")}
    assert stored == {o.id for o in good}
