"""Applying one event to a stored order: decide, append to the timeline, announce the change.

Shared by the saga (events from the broker) and the API (cancellations), so both move an order
through exactly the same state machine and write exactly the same records.
"""

from __future__ import annotations

from orderflow.adapters.db.orders import SqlOrderRepository, TimelineEntry
from orderflow.domain import messages as m
from orderflow.domain.order import OrderState, decide
from orderflow.services.runtime.handler import BatchContext, PermanentError

# Facts recorded on the timeline even though they change no status.
INFORMATIONAL = (m.StockReleased, m.PaymentRefunded)

STATES = "orders.states"


async def apply_event(ctx: BatchContext, event: m.Event, actor: str) -> list[m.Message]:
    """Decide, record and announce one event (also used by the API for cancellations)."""
    repo = SqlOrderRepository(ctx.conn)
    states: dict[str, tuple[OrderState, int]] = ctx.cache.setdefault(STATES, {})
    if event.order_id not in states:
        states.update(await repo.states([event.order_id]))
    if event.order_id not in states:
        raise PermanentError(f"unknown order {event.order_id}")
    state, version = states[event.order_id]
    decision = decide(state, event)
    if decision.status is None and not decision.commands and not isinstance(event, INFORMATIONAL):
        return []  # stale or duplicate: nothing to record
    new_status = decision.status or state.status
    entry = TimelineEntry(
        event.order_id,
        type(event).__name__,
        new_status,
        state.status,
        decision.reason or getattr(event, "reason", None),
        actor,
    )
    new_version = await repo.record(entry, version)
    states[event.order_id] = (
        OrderState(
            state.order_id, new_status, state.total_amount, state.currency, state.payment_token
        ),
        new_version,
    )
    out: list[m.Message] = list(decision.commands)
    if decision.status is not None:
        out.append(
            m.OrderStatusChanged(
                event.order_id, new_status.value, state.status.value, new_version, decision.reason
            )
        )
    return out
