"""Cancelling an order on request: the same state machine and records as the saga's events.

OrderNotFoundError           no such order, or (for a customer) not theirs
OrderNotCancellableError     (domain) the order already left the warehouse
ConcurrentUpdateError        (ports) the order kept changing under every retry (the saga moving
                             it): the caller answers "try again"
"""

from __future__ import annotations

from orderflow.domain import messages as m
from orderflow.messaging.envelope import encode
from orderflow.ports.errors import ConcurrentUpdateError
from orderflow.ports.orders import OrderRow
from orderflow.ports.storage import Storage
from orderflow.services.orders.transitions import apply_events
from orderflow.services.runtime.retrying import retry_lost_race


class OrderNotFoundError(LookupError):
    pass


async def cancel_order(
    storage: Storage, order_id: str, *, owner: str | None, actor: str, reason: str
) -> OrderRow:
    """Cancel the order (releasing its stock and refunding it, by commands through the outbox);
    returns it as it is now. `owner`: the customer it must belong to, None for an admin.
    Cancelling a cancelled order changes nothing and is no error. The saga may move the order
    between this transaction's read and its write: then it runs again, on the order as it is."""
    return await retry_lost_race(
        lambda: _cancel_once(storage, order_id, owner=owner, actor=actor, reason=reason),
        on=ConcurrentUpdateError,
        event="cancel lost a race with another update; retrying",
        order_id=order_id,
    )


async def _cancel_once(
    storage: Storage, order_id: str, *, owner: str | None, actor: str, reason: str
) -> OrderRow:
    async with storage.write() as tx:
        if await tx.queries.get(order_id, owner) is None:
            raise OrderNotFoundError(order_id)
        cancellation = m.CancellationRequested(order_id, actor, reason)
        [produced] = await apply_events(tx.orders, [cancellation], actor=actor)
        if produced is None:  # only a deleted order could do this; none ever is
            raise OrderNotFoundError(order_id)
        await tx.outbox.add([encode(msg) for msg in produced])
        order = await tx.queries.get(order_id, None)
    if order is None:
        raise OrderNotFoundError(order_id)
    return order
