"""Applying events to stored orders: decide, append to the timeline, announce the changes.

Shared by the saga (events from the broker) and the API (cancellations), so both move an order
through exactly the same state machine and write exactly the same records.
"""

from __future__ import annotations

from collections.abc import Sequence

from orderflow.adapters.db.orders import SqlOrderRepository, TimelineEntry
from orderflow.domain import messages as m
from orderflow.domain.order import decide, evolve
from orderflow.services.runtime.handler import BatchResult, PermanentError

# Facts recorded on the timeline even though they change no status.
INFORMATIONAL = (m.StockReleased, m.PaymentRefunded)


async def apply_events(
    repo: SqlOrderRepository, events: Sequence[m.Event], actor: str
) -> list[BatchResult]:
    """One result per event: the messages it causes, or the error it met. Domain errors of one
    event (an order that cannot be cancelled) are raised, as they answer a single request."""
    states = await repo.states_for_update([e.order_id for e in events])
    results: list[BatchResult] = []
    entries: list[tuple[TimelineEntry, int, frozenset[str]]] = []
    for event in events:
        if event.order_id not in states:
            results.append(PermanentError(f"unknown order {event.order_id}"))
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
    return results
