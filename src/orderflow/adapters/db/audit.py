"""SqlAuditQueries: the SQL behind `orderflow audit` (the rules are in services/audit/)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import and_, false, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.tables import orders, payments
from orderflow.domain.order import OrderStatus
from orderflow.ports.audit import OrderTotal
from orderflow.ports.ledger import LedgerEntry

_WITHOUT_EVENT = """
    SELECT o.id FROM orders o
    WHERE NOT EXISTS (SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.seq = o.version)
"""
_STATUS_DIFFERS = """
    SELECT o.id FROM orders o JOIN order_events e ON e.order_id = o.id AND e.seq = o.version
    WHERE e.status <> o.status
"""
_GAPS = "SELECT order_id FROM order_events GROUP BY order_id HAVING COUNT(*) <> MAX(seq)"
# A failed order may fail once more per admin resume (a replayed dead letter can fail again).
_TERMINAL_TWICE = """
    SELECT DISTINCT order_id FROM (
        SELECT e.order_id FROM order_events e
        WHERE e.status IN ('rejected', 'payment_failed', 'cancelled', 'failed', 'delivered')
          AND (e.previous_status IS NULL OR e.previous_status <> e.status)
        GROUP BY e.order_id, e.status
        HAVING COUNT(*) > 1 + CASE WHEN e.status = 'failed' THEN (
            SELECT COUNT(*) FROM order_events r
            WHERE r.order_id = e.order_id AND r.type = 'ProcessingResumed') ELSE 0 END) twice
"""
_STOCK = """
    SELECT s.sku || '@' || s.warehouse FROM stock s
    WHERE s.reserved <> COALESCE((SELECT SUM(r.quantity) FROM reservations r
        WHERE r.sku = s.sku AND r.warehouse = s.warehouse AND r.status = 'held'), 0)
"""
_SETTLED_HOLDING = """
    SELECT DISTINCT r.order_id FROM reservations r JOIN orders o ON o.id = r.order_id
    WHERE r.status = 'held'
      AND o.status IN ('confirmed', 'rejected', 'payment_failed', 'cancelled', 'failed')
"""


class SqlAuditQueries:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _ids(self, sql: str) -> list[str]:
        return [str(row[0]) for row in await self._conn.execute(text(sql))]

    async def orders_without_their_event(self) -> Sequence[str]:
        return await self._ids(_WITHOUT_EVENT)

    async def status_differs_from_event(self) -> Sequence[str]:
        return await self._ids(_STATUS_DIFFERS)

    async def timeline_gaps(self) -> Sequence[str]:
        return await self._ids(_GAPS)

    async def terminal_status_twice(self) -> Sequence[str]:
        return await self._ids(_TERMINAL_TWICE)

    async def stock_not_adding_up(self) -> Sequence[str]:
        return await self._ids(_STOCK)

    async def settled_orders_holding_stock(self) -> Sequence[str]:
        return await self._ids(_SETTLED_HOLDING)

    async def order_totals(self) -> Sequence[OrderTotal]:
        query = select(orders.c.id, orders.c.status, orders.c.total_amount, orders.c.currency)
        return [
            OrderTotal(str(row.id), OrderStatus(row.status), row.total_amount, row.currency)
            for row in await self._conn.execute(query)
        ]

    async def ledger(self) -> Sequence[LedgerEntry]:
        return [
            LedgerEntry(
                row.idempotency_key,
                str(row.order_id),
                row.kind,
                row.provider_reference,
                row.amount,
                row.currency,
            )
            for row in await self._conn.execute(select(payments))
        ]

    async def unchanged_since(self, cutoffs: Mapping[OrderStatus, datetime]) -> Sequence[str]:
        late = or_(
            false(),
            *(
                and_(orders.c.status == status.value, orders.c.updated_at < cutoff)
                for status, cutoff in cutoffs.items()
            ),
        )
        return [str(row.id) for row in await self._conn.execute(select(orders.c.id).where(late))]

    async def status_counts(self) -> Mapping[str, int]:
        rows = await self._conn.execute(text("SELECT status, COUNT(*) FROM orders GROUP BY status"))
        return {str(r[0]): int(r[1]) for r in rows}
