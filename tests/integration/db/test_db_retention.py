"""Pruning processed message ids on SQLite and PostgreSQL: old ids go a chunk at a time, recent
ones and the dead-letter sweep's stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert

from orderflow.adapters.db.clock import now
from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import migrate
from orderflow.adapters.db.storage import SqlStorage
from orderflow.adapters.db.tables import processed_messages
from orderflow.services.runtime.retention import ProcessedPruner
from tests.support.databases import query

KEPT = "SELECT message_id FROM processed_messages"


async def test_old_ids_are_pruned_in_chunks_and_recent_or_dead_letter_ids_kept(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        await migrate(db)
        old, recent = now() - timedelta(hours=2), now() - timedelta(minutes=5)
        rows = [
            {"consumer": consumer, "message_id": f"{consumer}-{age}-{i}", "processed_at": at}
            for consumer in ("inventory", "payment", "dead-letters")
            for age, at in (("old", old), ("recent", recent))
            for i in range(7)
        ]
        async with db.write() as conn:
            await conn.execute(insert(processed_messages), rows)

        pruned = await ProcessedPruner(SqlStorage(db), retention=3600, chunk=3).sweep()
        assert pruned == 14  # 7 old ids each of inventory and payment, over five chunks
        assert await ProcessedPruner(SqlStorage(db), retention=3600).sweep() == 0
    finally:
        await db.dispose()
    left = {str(r[0]) for r in await query(database_url, KEPT)}
    assert left == {
        r["message_id"]
        for r in rows
        if "recent" in str(r["message_id"]) or r["consumer"] == "dead-letters"
    }
