"""InventoryHandler: reserve all lines or none, commit on payment, release on compensation.

A batch is decided in memory against the stock levels read (and, on PostgreSQL, locked) at its
start, then written with a few set-based statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import structlog

from orderflow.domain import messages as m
from orderflow.domain.inventory import WarehouseStock, allocate, hold, short_skus
from orderflow.ports.inventory import COMMITTED, HELD, RELEASED, InventoryChanges, Reservation
from orderflow.ports.storage import Writes
from orderflow.services.runtime.handler import BatchResult, PermanentError

log = structlog.get_logger()


class InventoryHandler:
    group: ClassVar[str] = "inventory"
    topics: ClassVar[tuple[str, ...]] = (m.INVENTORY_COMMANDS,)

    async def call_out(self, message: m.Message) -> None:
        return None

    async def apply(self, tx: Writes, batch: Sequence[tuple[m.Message, None]]) -> list[BatchResult]:
        inventory = tx.inventory
        held = await inventory.reservations([msg.order_id for msg, _ in batch])
        skus = [
            line.sku for msg, _ in batch if isinstance(msg, m.ReserveStock) for line in msg.lines
        ]
        levels = await inventory.levels(skus)
        changes = InventoryChanges()
        results: list[BatchResult] = []
        for msg, _ in batch:
            existing = held.get(msg.order_id, [])
            match msg:
                case m.ReserveStock(lines=lines):
                    results.append(_reserve(msg.order_id, lines, existing, levels, changes))
                case m.CommitStock():
                    _transition(msg.order_id, existing, HELD, COMMITTED, changes)
                    results.append([m.StockCommitted(msg.order_id)])
                case m.ReleaseStock():
                    released = _release(msg.order_id, existing, changes)
                    results.append([m.StockReleased(msg.order_id)] if released else [])
                case _:
                    results.append(
                        PermanentError(f"inventory does not handle {type(msg).__name__}")
                    )
        await inventory.write(changes)
        return results


def _reserve(
    oid: str,
    lines: Sequence[m.Line],
    existing: list[Reservation],
    levels: dict[str, list[WarehouseStock]],
    changes: InventoryChanges,
) -> BatchResult:
    if any(r.status != RELEASED for r in existing):
        return [m.StockReserved(oid)]  # reserved by an earlier delivery of this command
    # No reservation, or only released ones: an order an admin restarted after it failed
    # (services/orders/recovery.py) reserves again; a redelivered command never gets here, its
    # message id was recorded as processed with its first reservation.
    plan = allocate(levels, lines)
    if plan is None:
        reason = f"out of stock: {', '.join(short_skus(levels, lines))}"
        with structlog.contextvars.bound_contextvars(order_id=oid):
            log.info("reservation refused", reason=reason)
        return [m.StockRejected(oid, reason)]
    hold(levels, plan)
    for a in plan:
        changes.move(a.sku, a.warehouse, reserved=a.quantity)
        changes.new_reservations.append((oid, a))
    return [m.StockReserved(oid)]


def _transition(
    oid: str, existing: list[Reservation], old: str, new: str, changes: InventoryChanges
) -> None:
    rows = [r for r in existing if r.status == old]
    for r in rows:
        if new == COMMITTED:  # the goods leave the warehouse
            changes.move(r.sku, r.warehouse, on_hand=-r.quantity, reserved=-r.quantity)
        elif old == HELD:  # back on the shelf
            changes.move(r.sku, r.warehouse, reserved=-r.quantity)
        else:  # committed goods come back
            changes.move(r.sku, r.warehouse, on_hand=r.quantity)
    if rows:
        changes.status_changes.append((oid, old, new))


def _release(oid: str, existing: list[Reservation], changes: InventoryChanges) -> bool:
    outstanding = [r for r in existing if r.status != RELEASED]
    _transition(oid, existing, HELD, RELEASED, changes)
    _transition(oid, existing, COMMITTED, RELEASED, changes)
    return bool(outstanding)
