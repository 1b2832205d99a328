"""SqlInventory: multi-warehouse stock and the reservations held against it, read and written a
batch at a time.

Stock rows carry CHECK constraints (reserved >= 0, on_hand >= reserved), so stock can never go
negative whatever a writer computes: a batch that would break them fails whole and is retried
message by message. On PostgreSQL the stock rows a batch reads are locked (FOR UPDATE, in sku
order, so two batches never wait on each other in a cycle) until it commits; SQLite writers are
serialised by BEGIN IMMEDIATE.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.clock import now
from orderflow.adapters.db.tables import reservations, stock, warehouses
from orderflow.domain.inventory import WarehouseStock
from orderflow.ports.inventory import HELD, RELEASED, InventoryChanges, Reservation


class SqlInventory:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def levels(self, skus: Sequence[str]) -> dict[str, list[WarehouseStock]]:
        """Stock of these skus per warehouse, preferred warehouse first."""
        if not skus:
            return {}
        rows = await self._conn.execute(
            select(stock.c.sku, stock.c.warehouse, stock.c.on_hand, stock.c.reserved)
            .join(warehouses, warehouses.c.code == stock.c.warehouse)
            .where(stock.c.sku.in_(sorted(set(skus))))
            .order_by(stock.c.sku, warehouses.c.priority, stock.c.warehouse)
            .with_for_update(of=stock)
        )
        levels: dict[str, list[WarehouseStock]] = {}
        for r in rows:
            levels.setdefault(r.sku, []).append(WarehouseStock(r.warehouse, r.on_hand, r.reserved))
        return levels

    async def reservations(self, order_ids: Sequence[str]) -> dict[str, list[Reservation]]:
        rows = await self._conn.execute(
            select(reservations).where(reservations.c.order_id.in_(list(set(order_ids))))
        )
        found: dict[str, list[Reservation]] = {}
        for r in rows:
            found.setdefault(r.order_id, []).append(
                Reservation(r.sku, r.warehouse, r.quantity, r.status)
            )
        return found

    async def write(self, changes: InventoryChanges) -> None:
        deltas = [
            {"s": sku, "w": wh, "d_on_hand": d[0], "d_reserved": d[1]}
            for (sku, wh), d in sorted(changes.stock_deltas.items())
            if d != [0, 0]
        ]
        if deltas:
            await self._conn.execute(
                update(stock)
                .where(stock.c.sku == bindparam("s"), stock.c.warehouse == bindparam("w"))
                .values(
                    on_hand=stock.c.on_hand + bindparam("d_on_hand"),
                    reserved=stock.c.reserved + bindparam("d_reserved"),
                ),
                deltas,
            )
        if changes.new_reservations:
            at = now()
            # An order reserving again after its stock was released (a restarted order): the
            # released rows hold nothing and would collide with the new ones.
            await self._conn.execute(
                delete(reservations).where(
                    reservations.c.order_id.in_({oid for oid, _ in changes.new_reservations}),
                    reservations.c.status == RELEASED,
                )
            )
            await self._conn.execute(
                insert(reservations),
                [
                    {
                        "order_id": oid,
                        "sku": a.sku,
                        "warehouse": a.warehouse,
                        "quantity": a.quantity,
                        "status": HELD,
                        "created_at": at,
                    }
                    for oid, a in changes.new_reservations
                ],
            )
        if changes.status_changes:
            await self._conn.execute(
                update(reservations)
                .where(
                    reservations.c.order_id == bindparam("oid"),
                    reservations.c.status == bindparam("old"),
                )
                .values(status=bindparam("new")),
                [{"oid": o, "old": old, "new": new} for o, old, new in changes.status_changes],
            )
