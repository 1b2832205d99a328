"""OrderSaga: the order service's handler, applying the state machine to every event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from orderflow.adapters.db.orders import SqlOrderRepository
from orderflow.domain import messages as m
from orderflow.services.runtime.handler import BatchContext, BatchResult, PermanentError
from orderflow.services.runtime.transitions import apply_events


class OrderSaga:
    group: ClassVar[str] = "orders"
    topics: ClassVar[tuple[str, ...]] = (m.INVENTORY_EVENTS, m.PAYMENT_EVENTS, m.PIPELINE_EVENTS)

    async def call_out(self, message: m.Message) -> object:
        return None

    async def apply(
        self, ctx: BatchContext, batch: Sequence[tuple[m.Message, object]]
    ) -> list[BatchResult]:
        events = [msg for msg, _ in batch if isinstance(msg, m.Event)]
        applied = iter(await apply_events(SqlOrderRepository(ctx.conn), events, actor=self.group))
        return [
            next(applied)
            if isinstance(msg, m.Event)
            else PermanentError(f"the saga does not handle {type(msg).__name__}")
            for msg, _ in batch
        ]
