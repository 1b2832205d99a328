"""SqlOrderWatch and SqlPipelineBacklog: the reads behind reservation expiry, the stuck-order
watchdog and backpressure.

When an order entered its status is not a column: it is the time of the latest timeline entry
that moved the order into that status (entries that keep the status, like a re-drive, do not
count; an order an admin resumed after a failure enters `pending` again), read by primary key.

Claiming is FOR UPDATE OF orders SKIP LOCKED, so two watchers on PostgreSQL never hold the same
order (the second skips it, and by the time it looks again the first has moved it); SQLite
has no row locks (SQLAlchemy leaves the clause out there) and its single writer serialises them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.clock import as_utc
from orderflow.adapters.db.tables import order_events, order_items, orders, outbox
from orderflow.domain.messages import Line
from orderflow.domain.order import SETTLED_STATUSES, OrderStatus
from orderflow.ports.watch import IdleOrder

_IN_FLIGHT = [s.value for s in OrderStatus if s not in SETTLED_STATUSES]


def _status_since() -> ScalarSelect[Any]:
    """When the order (the outer query's row) last entered the status it is in."""
    e = order_events.c
    return (
        select(func.max(e.at))
        .where(
            e.order_id == orders.c.id,
            e.status == orders.c.status,
            or_(e.previous_status.is_(None), e.previous_status != e.status),
        )
        .scalar_subquery()
    )


class SqlOrderWatch:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def idle(self, cutoffs: Mapping[OrderStatus, datetime], limit: int) -> list[IdleOrder]:
        if not cutoffs:
            return []
        since = _status_since().label("status_since")
        rows = await self._conn.execute(
            select(orders.c.id, orders.c.status, orders.c.updated_at, since)
            .where(
                or_(
                    *(
                        and_(orders.c.status == s.value, orders.c.updated_at < cutoff)
                        for s, cutoff in cutoffs.items()
                    )
                )
            )
            .order_by(orders.c.updated_at, orders.c.id)
            .limit(limit)
            .with_for_update(of=orders, skip_locked=True)
        )
        return [
            IdleOrder(r.id, OrderStatus(r.status), as_utc(r.updated_at), as_utc(r.status_since))
            for r in rows
        ]

    async def entered_before(self, status: OrderStatus, before: datetime, limit: int) -> list[str]:
        rows = await self._conn.execute(
            select(orders.c.id)
            .where(orders.c.status == status.value, _status_since() < before)
            .order_by(orders.c.id)
            .limit(limit)
            .with_for_update(of=orders, skip_locked=True)
        )
        return list(rows.scalars())

    async def lines(self, order_ids: Sequence[str]) -> dict[str, tuple[Line, ...]]:
        rows = await self._conn.execute(
            select(order_items.c.order_id, order_items.c.sku, order_items.c.quantity)
            .where(order_items.c.order_id.in_(sorted(set(order_ids))))
            .order_by(order_items.c.order_id, order_items.c.line_no)
        )
        found: dict[str, list[Line]] = {}
        for r in rows:
            found.setdefault(r.order_id, []).append(Line(r.sku, r.quantity))
        return {oid: tuple(lines) for oid, lines in found.items()}


class SqlPipelineBacklog:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def size(self) -> int:
        """Two index-only counts in one statement: the outbox (small unless the broker lags) and
        the orders in flight (ix_orders_status)."""
        unpublished = select(func.count()).select_from(outbox).scalar_subquery()
        in_flight = (
            select(func.count())
            .select_from(orders)
            .where(orders.c.status.in_(_IN_FLIGHT))
            .scalar_subquery()
        )
        return int((await self._conn.execute(select(unpublished + in_flight))).scalar_one())
