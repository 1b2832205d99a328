"""What the inventory service keeps: stock per sku and warehouse, and reservations against it.

Read and written a batch at a time: the handler reads the levels and reservations of a whole batch,
decides in memory, and hands every change back in one InventoryChanges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from orderflow.domain.inventory import Allocation, WarehouseStock

# A reservation's life: held -> committed (the stock left the building) or released.
HELD, COMMITTED, RELEASED = "held", "committed", "released"


@dataclass(frozen=True, slots=True)
class Reservation:
    sku: str
    warehouse: str
    quantity: int
    status: str


@dataclass
class InventoryChanges:
    """Everything a batch changes, written with a handful of statements at the end."""

    stock_deltas: dict[tuple[str, str], list[int]] = field(
        default_factory=dict
    )  # [on_hand, reserved]
    new_reservations: list[tuple[str, Allocation]] = field(default_factory=list)
    status_changes: list[tuple[str, str, str]] = field(default_factory=list)  # order, from, to

    def move(self, sku: str, warehouse: str, on_hand: int = 0, reserved: int = 0) -> None:
        delta = self.stock_deltas.setdefault((sku, warehouse), [0, 0])
        delta[0] += on_hand
        delta[1] += reserved


class Inventory(Protocol):
    async def levels(self, skus: Sequence[str]) -> dict[str, list[WarehouseStock]]:
        """Stock of these skus per warehouse, preferred warehouse first; locked until the
        transaction ends where the database can lock rows."""
        ...

    async def reservations(self, order_ids: Sequence[str]) -> dict[str, list[Reservation]]: ...

    async def write(self, changes: InventoryChanges) -> None:
        """Apply a batch's changes. Stock never goes negative: a change that would make it fails
        the whole call."""
        ...
