"""The stream service's read side: an order's status changes as its timeline recorded them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StatusChange:
    order_id: str
    customer_id: str
    version: int  # the timeline entry's seq: the order's version after the change
    status: str
    previous_status: str | None
    reason: str | None
    at: datetime  # when the change was decided (the writer's clock)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose changes: one customer's orders, one order, or (neither) every order."""

    customer_id: str | None = None
    order_id: str | None = None


class StatusChanges(Protocol):
    async def by_version(self, keys: Sequence[tuple[str, int]]) -> list[StatusChange]:
        """The changes with these (order id, version) keys that are stored (in any order)."""
        ...

    async def since(self, scope: Scope, since: datetime, limit: int) -> list[StatusChange]:
        """The scope's changes at or after `since`, oldest first (by time, order id, version),
        at most `limit` of them."""
        ...

    async def owner(self, order_id: str) -> str | None:
        """The customer id of the order; None if there is no such order."""
        ...
