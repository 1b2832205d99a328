"""InventoryHandler: reserve all lines or none, commit on payment, release on compensation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import structlog

from orderflow.adapters.db.inventory import OutOfStockError, SqlInventory
from orderflow.domain import messages as m
from orderflow.services.runtime.handler import BatchContext, PermanentError

log = structlog.get_logger()


class InventoryHandler:
    group: ClassVar[str] = "inventory"
    topics: ClassVar[tuple[str, ...]] = (m.INVENTORY_COMMANDS,)

    async def call_out(self, message: m.Message) -> object:
        return None

    async def apply(
        self, ctx: BatchContext, message: m.Message, called: object
    ) -> Sequence[m.Message]:
        inventory = SqlInventory(ctx.conn)
        oid = message.order_id
        match message:
            case m.ReserveStock(lines=lines):
                try:
                    async with ctx.conn.begin_nested():
                        await inventory.reserve(oid, lines)
                except OutOfStockError as exc:
                    log.info("reservation refused", reason=str(exc))
                    return [m.StockRejected(oid, str(exc))]
                return [m.StockReserved(oid)]
            case m.CommitStock():
                await inventory.commit(oid)
                return [m.StockCommitted(oid)]
            case m.ReleaseStock():
                return [m.StockReleased(oid)] if await inventory.release(oid) else []
        raise PermanentError(f"inventory does not handle {type(message).__name__}")
