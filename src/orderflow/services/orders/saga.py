"""OrderSaga: the order service's handler, applying the state machine to every event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from orderflow.domain import messages as m
from orderflow.ports.storage import Writes
from orderflow.services.orders.transitions import apply_events
from orderflow.services.runtime.handler import BatchResult, PermanentError


class OrderSaga:
    group: ClassVar[str] = "orders"
    topics: ClassVar[tuple[str, ...]] = (m.INVENTORY_EVENTS, m.PAYMENT_EVENTS, m.PIPELINE_EVENTS)

    async def call_out(self, message: m.Message) -> None:
        return None

    async def apply(self, tx: Writes, batch: Sequence[tuple[m.Message, None]]) -> list[BatchResult]:
        events = [msg for msg, _ in batch if isinstance(msg, m.Event)]
        applied = iter(await apply_events(tx.orders, events, actor=self.group))
        results: list[BatchResult] = []
        for msg, _ in batch:
            if not isinstance(msg, m.Event):
                results.append(PermanentError(f"the saga does not handle {type(msg).__name__}"))
            elif (produced := next(applied)) is None:
                results.append(PermanentError(f"unknown order {msg.order_id}"))
            else:
                results.append(produced)
        return results
