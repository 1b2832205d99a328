"""Processed message ids on SQLite and PostgreSQL: forgetting ids unmarks only those, of that
consumer (the dead-letter tools forget a replayed message's failure report)."""

from __future__ import annotations

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import migrate
from orderflow.adapters.db.storage import SqlStorage


async def test_forgotten_ids_are_seen_no_more(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate(db)
        storage = SqlStorage(db)
        async with storage.write() as tx:
            await tx.processed("dead-letters").mark(["a", "b"])
            await tx.processed("inventory").mark(["a"])
        async with storage.write() as tx:
            await tx.processed("dead-letters").forget(["a", "never-marked"])
        async with storage.write() as tx:
            assert await tx.processed("dead-letters").seen(["a", "b"]) == {"b"}
            assert await tx.processed("inventory").seen(["a"]) == {"a"}
            await tx.processed("dead-letters").mark(["a"])  # can be marked again
    finally:
        await db.dispose()
