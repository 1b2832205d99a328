"""SqlInventory: multi-warehouse stock and the reservations held against it.

Stock rows carry CHECK constraints (reserved >= 0, on_hand >= reserved) and every change is a
conditional UPDATE, so stock can never go negative even if two writers race; on PostgreSQL the rows
of a sku are also locked (in sku order, so two orders never wait on each other in a cycle).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.orders import now
from orderflow.adapters.db.tables import reservations, stock, warehouses
from orderflow.domain.messages import Line

HELD, COMMITTED, RELEASED = "held", "committed", "released"


class OutOfStockError(Exception):
    def __init__(self, skus: Sequence[str]) -> None:
        super().__init__(f"out of stock: {', '.join(skus)}")
        self.skus = tuple(skus)


class StockConflictError(Exception):
    """Stock changed under a reservation (impossible while rows are locked); retrying is safe."""


class SqlInventory:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def reserve(self, order_id: str, lines: Sequence[Line]) -> bool:
        """Hold every line or none (raises OutOfStockError). False if already reserved."""
        if await self._reservations(order_id):
            return False
        wanted: dict[str, int] = {}
        for line in lines:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
        plan: list[tuple[str, str, int]] = []
        short: list[str] = []
        for sku in sorted(wanted):
            allocation = await self._allocate(sku, wanted[sku])
            if allocation is None:
                short.append(sku)
            else:
                plan.extend((sku, wh, qty) for wh, qty in allocation)
        if short:
            raise OutOfStockError(short)
        for sku, wh, qty in plan:
            result = await self._conn.execute(
                update(stock)
                .where(
                    stock.c.sku == sku,
                    stock.c.warehouse == wh,
                    stock.c.on_hand - stock.c.reserved >= qty,
                )
                .values(reserved=stock.c.reserved + qty)
            )
            if result.rowcount != 1:
                raise StockConflictError(f"stock of {sku} at {wh} changed while reserving")
        at = now()
        await self._conn.execute(
            insert(reservations),
            [
                {
                    "order_id": order_id,
                    "sku": sku,
                    "warehouse": wh,
                    "quantity": qty,
                    "status": HELD,
                    "created_at": at,
                }
                for sku, wh, qty in plan
            ],
        )
        return True

    async def _allocate(self, sku: str, quantity: int) -> list[tuple[str, int]] | None:
        """Take from warehouses in priority order, splitting a line when one has too little."""
        rows = await self._conn.execute(
            select(stock.c.warehouse, (stock.c.on_hand - stock.c.reserved).label("free"))
            .join(warehouses, warehouses.c.code == stock.c.warehouse)
            .where(stock.c.sku == sku)
            .order_by(warehouses.c.priority, stock.c.warehouse)
            .with_for_update(of=stock)
        )
        allocation: list[tuple[str, int]] = []
        remaining = quantity
        for row in rows:
            take = min(row.free, remaining)
            if take > 0:
                allocation.append((row.warehouse, take))
                remaining -= take
            if remaining == 0:
                return allocation
        return None

    async def commit(self, order_id: str) -> bool:
        """The held stock leaves the warehouse. False if nothing was held."""
        held = [r for r in await self._reservations(order_id) if r[3] == HELD]
        for sku, wh, qty, _ in held:
            await self._conn.execute(
                update(stock)
                .where(stock.c.sku == sku, stock.c.warehouse == wh)
                .values(on_hand=stock.c.on_hand - qty, reserved=stock.c.reserved - qty)
            )
        await self._set_status(order_id, HELD, COMMITTED)
        return bool(held)

    async def release(self, order_id: str) -> bool:
        """Put held or committed stock back. False if there was nothing to put back."""
        rows = [r for r in await self._reservations(order_id) if r[3] != RELEASED]
        for sku, wh, qty, status in rows:
            values = (
                {"reserved": stock.c.reserved - qty}
                if status == HELD
                else {"on_hand": stock.c.on_hand + qty}
            )
            await self._conn.execute(
                update(stock).where(stock.c.sku == sku, stock.c.warehouse == wh).values(**values)
            )
        await self._set_status(order_id, HELD, RELEASED)
        await self._set_status(order_id, COMMITTED, RELEASED)
        return bool(rows)

    async def _reservations(self, order_id: str) -> list[tuple[str, str, int, str]]:
        rows = await self._conn.execute(
            select(
                reservations.c.sku,
                reservations.c.warehouse,
                reservations.c.quantity,
                reservations.c.status,
            ).where(reservations.c.order_id == order_id)
        )
        return [(r.sku, r.warehouse, r.quantity, r.status) for r in rows]

    async def _set_status(self, order_id: str, old: str, new: str) -> None:
        await self._conn.execute(
            update(reservations)
            .where(reservations.c.order_id == order_id, reservations.c.status == old)
            .values(status=new)
        )
