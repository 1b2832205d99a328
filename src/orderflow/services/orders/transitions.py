"""Applying events to stored orders: decide, append to the timeline, announce the changes.

Used by the saga (events from the broker) and by cancelling (a request through the API), so both
move an order through exactly the same state machine and write exactly the same records.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from orderflow.domain import messages as m
from orderflow.domain.order import SETTLED_STATUSES, OrderStatus, decide, evolve
from orderflow.observability import metrics
from orderflow.ports.orders import Change, OrderRepository, TimelineEntry

# Facts recorded on the timeline even though they change no status.
INFORMATIONAL = (m.StockReleased, m.PaymentRefunded, m.RefundDeclined)


async def apply_events(
    repo: OrderRepository, events: Sequence[m.Event], actor: str
) -> list[list[m.Message] | None]:
    """One answer per event: the messages it causes, or None when its order is unknown. Domain
    errors of one event (an order that cannot be cancelled) are raised, as they answer a single
    request."""
    states = await repo.states_for_update([e.order_id for e in events])
    results: list[list[m.Message] | None] = []
    entries: list[Change] = []
    reached: list[tuple[OrderStatus, datetime | None]] = []
    for event in events:
        if event.order_id not in states:
            results.append(None)
            continue
        state, version = states[event.order_id]
        decision = decide(state, event)
        if (
            decision.status is None
            and not decision.commands
            and not isinstance(event, INFORMATIONAL)
        ):
            results.append([])  # stale or duplicate: nothing to record
            continue
        after = evolve(state, decision)
        new_status = after.status
        reason = decision.reason or getattr(event, "reason", None)
        entry = TimelineEntry(
            event.order_id, type(event).__name__, new_status, state.status, reason, actor
        )
        entries.append((entry, version, after.compensated))
        states[event.order_id] = (after, version + 1)
        out: list[m.Message] = list(decision.commands)
        if decision.status is not None:
            reached.append((new_status, state.placed_at))
            out.append(
                m.OrderStatusChanged(
                    event.order_id,
                    new_status.value,
                    state.status.value,
                    version + 1,
                    decision.reason,
                )
            )
        results.append(out)
    await repo.record(entries)
    # Recorded once the changes are written; a transaction that fails to commit after this
    # (the database lost mid-commit) has counted them, which is rare and errs on the high side.
    for status, placed_at in reached:
        metrics.status_reached(status.value, placed_at, status in SETTLED_STATUSES)
    return results
