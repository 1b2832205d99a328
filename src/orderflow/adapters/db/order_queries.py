"""SqlOrderQueries: the API's read side, whole orders with their lines and timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.tables import order_events, order_items, orders
from orderflow.ports.orders import OrderRow


class SqlOrderQueries:
    """Read side for the API: whole orders with lines and timeline, and pages of them."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, order_id: str, customer_id: str | None) -> OrderRow | None:
        query = select(orders).where(orders.c.id == order_id)
        if customer_id is not None:
            query = query.where(orders.c.customer_id == customer_id)
        row = (await self._conn.execute(query)).mappings().first()
        if row is None:
            return None
        order = dict(row)
        order["lines"] = await self._lines([order_id])
        events = await self._conn.execute(
            select(order_events)
            .where(order_events.c.order_id == order_id)
            .order_by(order_events.c.seq)
        )
        order["timeline"] = [dict(e) for e in events.mappings()]
        return order

    async def page(
        self,
        customer_id: str | None,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[OrderRow]:
        """Newest first; `after` is the (created_at, id) of the last order of the previous page."""
        query = select(orders)
        if customer_id is not None:
            query = query.where(orders.c.customer_id == customer_id)
        if status is not None:
            query = query.where(orders.c.status == status)
        if after is not None:
            created, oid = after
            query = query.where(
                or_(
                    orders.c.created_at < created,
                    and_(orders.c.created_at == created, orders.c.id < oid),
                )
            )
        query = query.order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(limit)
        rows = [dict(r) for r in (await self._conn.execute(query)).mappings()]
        lines = await self._lines([r["id"] for r in rows])
        for r in rows:
            r["lines"] = [line for line in lines if line["order_id"] == r["id"]]
        return rows

    async def _lines(self, order_ids: list[str]) -> list[dict[str, Any]]:
        if not order_ids:
            return []
        rows = await self._conn.execute(
            select(order_items)
            .where(order_items.c.order_id.in_(order_ids))
            .order_by(order_items.c.order_id, order_items.c.line_no)
        )
        return [dict(r) for r in rows.mappings()]
