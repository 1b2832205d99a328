"""The attempts ledger (ports/attempts.py) in the message_attempts table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.clock import now
from orderflow.adapters.db.tables import message_attempts
from orderflow.ports.attempts import FailedAttempt

MAX_ERROR_CHARS = 2000  # an error's text as stored: enough to diagnose, bounded in size


class SqlAttemptLog:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(self, attempts: Sequence[FailedAttempt]) -> None:
        if not attempts:
            return
        at = now()
        await self._conn.execute(
            insert(message_attempts),
            [
                {
                    "consumer_group": a.group,
                    "message_id": a.message_id,
                    "attempt": a.attempt,
                    "outcome": a.outcome,
                    "error": a.error[:MAX_ERROR_CHARS],
                    "failed_at": at,
                }
                for a in attempts
            ],
        )

    async def of(self, group: str, message_ids: Sequence[str]) -> dict[str, list[FailedAttempt]]:
        t = message_attempts.c
        rows = await self._conn.execute(
            select(t.message_id, t.attempt, t.outcome, t.error, t.failed_at)
            .where(t.consumer_group == group, t.message_id.in_(list(message_ids)))
            .order_by(t.id)
        )
        found: dict[str, list[FailedAttempt]] = {}
        for mid, attempt, outcome, error, failed_at in rows:
            # SQLite hands times back without a zone; they were written in UTC.
            at = failed_at if failed_at.tzinfo else failed_at.replace(tzinfo=UTC)
            found.setdefault(mid, []).append(FailedAttempt(group, mid, attempt, outcome, error, at))
        return found
