"""OrderSaga: the order service's handler, applying the state machine to every event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from orderflow.domain import messages as m
from orderflow.services.runtime.handler import BatchContext, PermanentError
from orderflow.services.runtime.transitions import apply_event


class OrderSaga:
    group: ClassVar[str] = "orders"
    topics: ClassVar[tuple[str, ...]] = (m.INVENTORY_EVENTS, m.PAYMENT_EVENTS, m.PIPELINE_EVENTS)

    async def call_out(self, message: m.Message) -> object:
        return None

    async def apply(
        self, ctx: BatchContext, message: m.Message, called: object
    ) -> Sequence[m.Message]:
        if not isinstance(message, m.Event):
            raise PermanentError(f"the saga does not handle {type(message).__name__}")
        return await apply_event(ctx, message, actor=self.group)
