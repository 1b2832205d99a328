"""SqlPaymentLedger: the captures and refunds the provider confirmed for each order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.clock import now
from orderflow.adapters.db.tables import payments
from orderflow.ports.ledger import CAPTURE, LedgerEntry


class SqlPaymentLedger:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Idempotent: an entry already recorded under its key is left as it was."""
        if not entries:
            return
        insert = pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        at = now()
        await self._conn.execute(
            insert(payments).on_conflict_do_nothing(index_elements=["idempotency_key"]),
            [{**asdict(e), "created_at": at} for e in entries],
        )

    async def capture_of(self, order_id: str) -> LedgerEntry | None:
        row = (
            await self._conn.execute(
                select(payments).where(payments.c.order_id == order_id, payments.c.kind == CAPTURE)
            )
        ).first()
        if row is None:
            return None
        return LedgerEntry(
            row.idempotency_key,
            row.order_id,
            row.kind,
            row.provider_reference,
            row.amount,
            row.currency,
        )
