"""What `orderflow audit` reads: the order database's facts and the payment provider's ledger.

Each query answers the subjects (order ids, or `sku@warehouse` for stock) that break one
invariant, or the raw records the audit service reconciles itself (money), so the rules of what
must hold live in `services/audit/` and only the SQL lives in the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from orderflow.domain.order import OrderStatus
from orderflow.ports.ledger import LedgerEntry


@dataclass(frozen=True, slots=True)
class OrderTotal:
    order_id: str
    status: OrderStatus
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class ProviderMovement:
    """A capture or refund the provider approved, as its own ledger records it."""

    order_id: str
    kind: str  # ports.ledger.CAPTURE | REFUND
    reference: str
    amount: int | None
    currency: str | None


class AuditQueries(Protocol):
    async def orders_without_their_event(self) -> Sequence[str]:
        """Orders with no timeline entry for their current version."""
        ...

    async def status_differs_from_event(self) -> Sequence[str]:
        """Orders whose status is not the one their latest timeline entry set."""
        ...

    async def timeline_gaps(self) -> Sequence[str]: ...

    async def terminal_status_twice(self) -> Sequence[str]: ...

    async def stock_not_adding_up(self) -> Sequence[str]:
        """`sku@warehouse` rows whose reserved count is not the sum of their held reservations."""
        ...

    async def settled_orders_holding_stock(self) -> Sequence[str]: ...

    async def order_totals(self) -> Sequence[OrderTotal]: ...

    async def ledger(self) -> Sequence[LedgerEntry]:
        """Every capture and refund the application recorded."""
        ...

    async def unchanged_since(self, cutoffs: Mapping[OrderStatus, datetime]) -> Sequence[str]:
        """Orders in one of these statuses whose last change is older than its cutoff."""
        ...

    async def status_counts(self) -> Mapping[str, int]: ...


class ProviderLedger(Protocol):
    async def movements(self) -> Sequence[ProviderMovement]:
        """Every capture and refund the provider approved, with the order each belongs to."""
        ...
