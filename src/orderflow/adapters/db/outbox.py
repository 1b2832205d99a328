"""The transactional outbox: messages written with the state change that caused them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.clock import now
from orderflow.adapters.db.tables import outbox
from orderflow.ports.broker import OutgoingMessage
from orderflow.ports.outbox import OutboxRow


class SqlOutbox:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        at = now()
        await self._conn.execute(
            insert(outbox),
            [
                {
                    "message_id": m.message_id,
                    "topic": m.topic,
                    "key": m.key,
                    "payload": m.payload,
                    "created_at": at,
                }
                for m in messages
            ],
        )

    async def oldest(self, limit: int, *, claim: bool = False) -> list[OutboxRow]:
        """The oldest rows. `claim` (PostgreSQL, in a write transaction): FOR UPDATE SKIP LOCKED,
        so relays share the outbox instead of publishing the same rows."""
        query = select(outbox).order_by(outbox.c.id).limit(limit)
        if claim:
            query = query.with_for_update(skip_locked=True)
        rows = await self._conn.execute(query)
        return [
            OutboxRow(r.id, OutgoingMessage(r.topic, r.key, r.message_id, r.payload)) for r in rows
        ]

    async def depth(self, cap: int) -> int:
        waiting = select(outbox.c.id).limit(cap).subquery()
        return int(await self._conn.scalar(select(func.count()).select_from(waiting)) or 0)

    async def remove(self, ids: Sequence[int]) -> None:
        await self._conn.execute(delete(outbox).where(outbox.c.id.in_(list(ids))))
