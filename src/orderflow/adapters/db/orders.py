"""SqlOrderRepository: orders, their lines and their timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.tables import customers, order_events, order_items, orders
from orderflow.domain.order import OrderState, OrderStatus
from orderflow.domain.pricing import PricedOrder


@dataclass(frozen=True, slots=True)
class NewOrder:
    id: str
    customer_id: str
    priced: PricedOrder
    payment_token: str
    shipping_address: Mapping[str, Any]
    idempotency_key: str | None
    request_hash: str | None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    order_id: str
    type: str
    status: OrderStatus
    previous_status: OrderStatus | None
    reason: str | None
    actor: str


class ConcurrentUpdateError(Exception):
    """The order changed between reading and writing it; the caller retries."""


def now() -> datetime:
    return datetime.now(UTC)


class SqlOrderRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def ensure_customers(self, ids: Sequence[tuple[str, str | None]]) -> None:
        wanted = dict(ids)
        found = await self._conn.execute(
            select(customers.c.id).where(customers.c.id.in_(list(wanted)))
        )
        missing = set(wanted) - set(found.scalars())
        if missing:
            at = now()
            await self._conn.execute(
                insert(customers),
                [{"id": cid, "email": wanted[cid], "created_at": at} for cid in missing],
            )

    async def find_by_idempotency_key(
        self, customer_id: str, key: str
    ) -> tuple[str, str | None] | None:
        """The (order id, request hash) stored under this key, if any."""
        row = (
            await self._conn.execute(
                select(orders.c.id, orders.c.request_hash).where(
                    orders.c.customer_id == customer_id, orders.c.idempotency_key == key
                )
            )
        ).first()
        return (row.id, row.request_hash) if row else None

    async def add(self, new_orders: Sequence[NewOrder], actor: str) -> None:
        at = now()
        await self._conn.execute(
            insert(orders),
            [
                {
                    "id": o.id,
                    "customer_id": o.customer_id,
                    "status": OrderStatus.PENDING.value,
                    "status_reason": None,
                    "version": 1,
                    "compensated": "",
                    "total_amount": o.priced.total.amount,
                    "currency": o.priced.total.currency,
                    "payment_token": o.payment_token,
                    "shipping_address": dict(o.shipping_address),
                    "idempotency_key": o.idempotency_key,
                    "request_hash": o.request_hash,
                    "created_at": at,
                    "updated_at": at,
                }
                for o in new_orders
            ],
        )
        await self._conn.execute(
            insert(order_items),
            [
                {
                    "order_id": o.id,
                    "line_no": n,
                    "sku": line.sku,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_amount": line.unit_price.amount,
                    "line_amount": line.total.amount,
                }
                for o in new_orders
                for n, line in enumerate(o.priced.lines, start=1)
            ],
        )
        await self._conn.execute(
            insert(order_events),
            [
                {
                    "order_id": o.id,
                    "seq": 1,
                    "type": "OrderPlaced",
                    "status": OrderStatus.PENDING.value,
                    "previous_status": None,
                    "reason": None,
                    "actor": actor,
                    "at": at,
                }
                for o in new_orders
            ],
        )

    async def states_for_update(
        self, order_ids: Sequence[str]
    ) -> dict[str, tuple[OrderState, int]]:
        """What the state machine needs, plus the version to update against. On PostgreSQL the
        rows stay locked until commit (the API may cancel while the saga applies an event)."""
        rows = await self._conn.execute(
            select(
                orders.c.id,
                orders.c.status,
                orders.c.total_amount,
                orders.c.currency,
                orders.c.payment_token,
                orders.c.version,
                orders.c.compensated,
            )
            .where(orders.c.id.in_(sorted(set(order_ids))))
            .order_by(orders.c.id)
            .with_for_update()
        )
        return {
            r.id: (
                OrderState(
                    r.id,
                    OrderStatus(r.status),
                    r.total_amount,
                    r.currency,
                    r.payment_token,
                    frozenset(filter(None, r.compensated.split(","))),
                ),
                r.version,
            )
            for r in rows
        }

    async def record(self, entries: Sequence[tuple[TimelineEntry, int, frozenset[str]]]) -> None:
        """Append to timelines and move statuses; each entry carries the version it was decided
        on, and a stale one fails the whole call (ConcurrentUpdateError)."""
        if not entries:
            return
        at = now()
        result = await self._conn.execute(
            update(orders)
            .where(orders.c.id == bindparam("oid"), orders.c.version == bindparam("expected"))
            .values(
                version=bindparam("next"),
                status=bindparam("new_status"),
                compensated=bindparam("new_compensated"),
                # A fact that changes no status keeps the reason of the status the order is in.
                status_reason=case(
                    (bindparam("changed"), bindparam("new_reason")), else_=orders.c.status_reason
                ),
                updated_at=at,
            ),
            [
                {
                    "oid": e.order_id,
                    "expected": version,
                    "next": version + 1,
                    "new_status": e.status.value,
                    "changed": e.status != e.previous_status,
                    "new_reason": e.reason,
                    "new_compensated": ",".join(sorted(compensated)),
                }
                for e, version, compensated in entries
            ],
        )
        # asyncpg reports no row count for executemany; there the rows were locked by
        # states_for_update, so the versions cannot have moved. SQLite counts, and checks.
        sane = self._conn.dialect.supports_sane_multi_rowcount
        if sane and result.rowcount != len(entries):
            raise ConcurrentUpdateError(", ".join(e.order_id for e, _, _ in entries))
        await self._conn.execute(
            insert(order_events),
            [
                {
                    "order_id": e.order_id,
                    "seq": version + 1,
                    "type": e.type,
                    "status": e.status.value,
                    "previous_status": e.previous_status.value if e.previous_status else None,
                    "reason": e.reason,
                    "actor": e.actor,
                    "at": at,
                }
                for e, version, _ in entries
            ],
        )


class OrderQueries:
    """Read side for the API: whole orders with lines and timeline, and pages of them."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, order_id: str, customer_id: str | None) -> dict[str, Any] | None:
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
    ) -> list[dict[str, Any]]:
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
