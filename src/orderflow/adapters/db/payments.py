"""SqlPaymentLedger: the captures and refunds the provider confirmed for each order."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.orders import now
from orderflow.adapters.db.tables import payments


class SqlPaymentLedger:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(
        self,
        *,
        idempotency_key: str,
        order_id: str,
        kind: str,
        provider_reference: str,
        amount: int,
        currency: str,
    ) -> None:
        insert = pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        await self._conn.execute(
            insert(payments)
            .values(
                idempotency_key=idempotency_key,
                order_id=order_id,
                kind=kind,
                provider_reference=provider_reference,
                amount=amount,
                currency=currency,
                created_at=now(),
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )

    async def capture_of(self, order_id: str) -> tuple[str, int, str] | None:
        """(provider reference, amount, currency) of the order's capture, if one was recorded."""
        row = (
            await self._conn.execute(
                select(payments.c.provider_reference, payments.c.amount, payments.c.currency).where(
                    payments.c.order_id == order_id, payments.c.kind == "capture"
                )
            )
        ).first()
        return (row[0], row[1], row[2]) if row else None
