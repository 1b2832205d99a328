"""SqlStatusChanges: the timeline entries that changed an order's status, with its customer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.tables import order_events, orders
from orderflow.ports.status_changes import Scope, StatusChange

_COLUMNS = (
    order_events.c.order_id,
    orders.c.customer_id,
    order_events.c.seq,
    order_events.c.status,
    order_events.c.previous_status,
    order_events.c.reason,
    order_events.c.at,
)
# Informational entries (a refund, a release) keep the status; only changes are streamed.
_CHANGES = or_(
    order_events.c.previous_status.is_(None),
    order_events.c.previous_status != order_events.c.status,
)


class SqlStatusChanges:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def by_version(self, keys: Sequence[tuple[str, int]]) -> list[StatusChange]:
        if not keys:
            return []
        query = (
            select(*_COLUMNS)
            .join(orders, orders.c.id == order_events.c.order_id)
            .where(tuple_(order_events.c.order_id, order_events.c.seq).in_(list(keys)))
        )
        return [_change(row) for row in await self._conn.execute(query)]

    async def since(self, scope: Scope, since: datetime, limit: int) -> list[StatusChange]:
        query = (
            select(*_COLUMNS)
            .join(orders, orders.c.id == order_events.c.order_id)
            .where(order_events.c.at >= since, _CHANGES)
        )
        if scope.customer_id is not None:
            query = query.where(orders.c.customer_id == scope.customer_id)
        if scope.order_id is not None:
            query = query.where(order_events.c.order_id == scope.order_id)
        query = query.order_by(
            order_events.c.at, order_events.c.order_id, order_events.c.seq
        ).limit(limit)
        return [_change(row) for row in await self._conn.execute(query)]

    async def owner(self, order_id: str) -> str | None:
        query = select(orders.c.customer_id).where(orders.c.id == order_id)
        owner: str | None = (await self._conn.execute(query)).scalar()
        return owner


def _change(row: Any) -> StatusChange:
    order_id, customer_id, seq, status, previous, reason, at = row
    at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
    if at.tzinfo is None:  # SQLite hands back the stored UTC time without its zone
        at = at.replace(tzinfo=UTC)
    return StatusChange(order_id, customer_id, seq, status, previous, reason, at)
