"""What the expiry job and the watchdog read: orders that have stopped moving, and the backlog.

Both run in several worker instances at once, so what they find is claimed: locked until the
transaction ends, skipping orders another instance holds, where the database can lock rows
(PostgreSQL); where writers take turns (SQLite) the write transaction alone serialises them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from orderflow.domain.messages import Line
from orderflow.domain.order import OrderStatus


@dataclass(frozen=True, slots=True)
class IdleOrder:
    order_id: str
    status: OrderStatus
    changed_at: datetime  # its last change of any kind (a re-drive included)
    status_since: datetime  # when it entered its status


class OrderWatch(Protocol):
    async def idle(self, cutoffs: Mapping[OrderStatus, datetime], limit: int) -> list[IdleOrder]:
        """Up to `limit` orders in one of these statuses, unchanged since that status's cutoff,
        the longest idle first; claimed."""
        ...

    async def entered_before(self, status: OrderStatus, before: datetime, limit: int) -> list[str]:
        """Up to `limit` orders still in `status` that entered it before `before`; claimed."""
        ...

    async def lines(self, order_ids: Sequence[str]) -> dict[str, tuple[Line, ...]]:
        """Each order's lines (sku, quantity)."""
        ...


class PipelineBacklog(Protocol):
    async def size(self) -> int:
        """Work the pipeline has accepted and not finished: outbox rows not yet published plus
        orders still waiting on a step (each has a message unprocessed somewhere)."""
        ...
