"""Group commit isolates its orders: when the database refuses one order of a batch, the others
are still committed and answered (on PostgreSQL, which refuses a NUL that SQLite stores)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import migrate
from orderflow.adapters.db.storage import SqlStorage
from orderflow.domain.money import Money
from orderflow.domain.pricing import CatalogEntry, price_order
from orderflow.ports.orders import NewOrder
from orderflow.services.orders.intake import Accepted, IdempotencyConflictError, OrderIntake
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


async def test_idempotency_keys_are_looked_up_for_a_whole_batch(database_url: str) -> None:
    """Keys seen before (in the database or earlier in the batch) replay their order, a key
    reused with another body is refused, new keys make new orders: one lookup per batch."""
    db = Database(database_url)
    intake = OrderIntake(SqlStorage(db))
    try:
        await migrate(db)
        intake.start()
        first = _keyed(order(), "k1")
        await intake.submit(first, None)
        again = replace(first, id=str(uuid.uuid4()))  # the same request, sent again
        changed = replace(_keyed(order("tok_mastercard"), "k1"), customer_id=first.customer_id)
        twice = _keyed(order(), "k2")
        twice_again = replace(twice, id=str(uuid.uuid4()))
        # Submitted together, so the intake takes them as one batch.
        results = await asyncio.gather(
            *(intake.submit(o, None) for o in [again, changed, twice, twice_again]),
            return_exceptions=True,
        )
    finally:
        await intake.stop()
        await db.dispose()
    assert results[0] == Accepted(first.id, replayed=True)
    assert isinstance(results[1], IdempotencyConflictError)
    assert results[2] == Accepted(twice.id, replayed=False)
    assert results[3] == Accepted(twice.id, replayed=True)


def _keyed(o: NewOrder, key: str) -> NewOrder:
    return replace(o, idempotency_key=key, request_hash=f"hash-of-{o.payment_token}")
