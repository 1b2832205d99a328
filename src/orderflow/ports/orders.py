"""What the order service keeps: orders, their lines and their timeline, and the API's reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from orderflow.domain.order import OrderState, OrderStatus
from orderflow.domain.pricing import PricedOrder

# A whole order as the API shows it: its columns, "lines" and (from `get`) "timeline".
OrderRow = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewOrder:
    id: str
    customer_id: str
    priced: PricedOrder
    payment_token: str
    shipping_address: Mapping[str, Any]
    idempotency_key: str | None
    request_hash: str | None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    order_id: str
    type: str
    status: OrderStatus
    previous_status: OrderStatus | None
    reason: str | None
    actor: str


# An entry to append, the version it was decided on, and what the order has undone after it.
Change = tuple[TimelineEntry, int, frozenset[str]]


class OrderRepository(Protocol):
    async def ensure_customers(self, ids: Sequence[tuple[str, str | None]]) -> None:
        """Create the (customer id, email) pairs not known yet."""
        ...

    async def find_by_idempotency_keys(
        self, slots: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, str | None]]:
        """For each (customer id, idempotency key) already used: its (order id, request hash)."""
        ...

    async def add(self, new_orders: Sequence[NewOrder], status: OrderStatus, actor: str) -> None:
        """Store new orders in `status`, each with its first timeline entry (OrderPlaced)."""
        ...

    async def states_for_update(
        self, order_ids: Sequence[str]
    ) -> dict[str, tuple[OrderState, int]]:
        """What the state machine needs, plus the version to update against; the orders stay
        locked until the transaction ends where the database can lock rows."""
        ...

    async def record(self, changes: Sequence[Change]) -> None:
        """Append to timelines and move statuses; a change decided on a stale version fails the
        whole call (ConcurrentUpdateError)."""
        ...


class OrderQueries(Protocol):
    """The read side: whole orders with lines and timeline, and pages of them."""

    async def get(self, order_id: str, customer_id: str | None) -> OrderRow | None:
        """The order with its timeline; None if missing or (given a customer) not theirs."""
        ...

    async def page(
        self,
        customer_id: str | None,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[OrderRow]:
        """Newest first; `after` is the (created_at, id) of the last order of the previous page."""
        ...
