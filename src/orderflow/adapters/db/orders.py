"""SqlOrderRepository: orders, their lines and their timeline."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, case, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.clock import now
from orderflow.adapters.db.tables import customers, order_events, order_items, orders
from orderflow.domain.order import OrderState, OrderStatus
from orderflow.ports.errors import ConcurrentUpdateError
from orderflow.ports.orders import Change, NewOrder


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

    async def find_by_idempotency_keys(
        self, slots: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, str | None]]:
        """For each (customer id, idempotency key) already used: its (order id, request hash).
        One statement for a whole batch of submissions."""
        if not slots:
            return {}
        slot = tuple_(orders.c.customer_id, orders.c.idempotency_key)
        rows = await self._conn.execute(
            select(
                orders.c.customer_id, orders.c.idempotency_key, orders.c.id, orders.c.request_hash
            ).where(slot.in_(list(slots)))
        )
        return {(r.customer_id, r.idempotency_key): (r.id, r.request_hash) for r in rows}

    async def add(self, new_orders: Sequence[NewOrder], status: OrderStatus, actor: str) -> None:
        at = now()
        await self._conn.execute(
            insert(orders),
            [
                {
                    "id": o.id,
                    "customer_id": o.customer_id,
                    "status": status.value,
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
                    "status": status.value,
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
                orders.c.created_at,
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
                    r.created_at,
                ),
                r.version,
            )
            for r in rows
        }

    async def record(self, entries: Sequence[Change]) -> None:
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
