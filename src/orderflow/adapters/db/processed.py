"""Consumer idempotency: which message ids a consumer group has already applied."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.clock import now
from orderflow.adapters.db.tables import processed_messages


class SqlProcessedMessages:
    def __init__(self, conn: AsyncConnection, consumer: str) -> None:
        self._conn = conn
        self._consumer = consumer

    async def seen(self, message_ids: Sequence[str]) -> set[str]:
        rows = await self._conn.execute(
            select(processed_messages.c.message_id).where(
                processed_messages.c.consumer == self._consumer,
                processed_messages.c.message_id.in_(list(message_ids)),
            )
        )
        return set(rows.scalars())

    async def mark(self, message_ids: Sequence[str]) -> None:
        if not message_ids:
            return
        at = now()
        await self._conn.execute(
            insert(processed_messages),
            [
                {"consumer": self._consumer, "message_id": mid, "processed_at": at}
                for mid in message_ids
            ],
        )

    async def forget(self, message_ids: Sequence[str]) -> None:
        if not message_ids:
            return
        await self._conn.execute(
            delete(processed_messages).where(
                processed_messages.c.consumer == self._consumer,
                processed_messages.c.message_id.in_(list(message_ids)),
            )
        )


class SqlProcessedRetention:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def prune(self, before: datetime, *, keep: Sequence[str], limit: int) -> int:
        """Chunked by `limit`, so a big backlog never holds the write lock for long."""
        oldest = (
            select(processed_messages.c.consumer, processed_messages.c.message_id)
            .where(
                processed_messages.c.processed_at < before,
                processed_messages.c.consumer.not_in(list(keep)),
            )
            .limit(limit)
        )
        result = await self._conn.execute(
            delete(processed_messages).where(
                tuple_(processed_messages.c.consumer, processed_messages.c.message_id).in_(oldest)
            )
        )
        return result.rowcount
