"""Stock allocation: which warehouses a reservation takes from. Pure: levels in, plan out."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass

from orderflow.domain.messages import Line


@dataclass
class WarehouseStock:
    """One sku's stock at one warehouse, in the order warehouses are preferred."""

    warehouse: str
    on_hand: int
    reserved: int

    @property
    def free(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class Allocation:
    sku: str
    warehouse: str
    quantity: int


def allocate(
    levels: Mapping[str, Sequence[WarehouseStock]], lines: Sequence[Line]
) -> list[Allocation] | None:
    """Take every line from the preferred warehouses first, splitting a line across warehouses
    when one has too little. None when any line cannot be filled: all or nothing."""
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    plan: list[Allocation] = []
    for sku, quantity in wanted.items():
        remaining = quantity
        for stock in levels.get(sku, ()):
            take = min(stock.free, remaining)
            if take > 0:
                plan.append(Allocation(sku, stock.warehouse, take))
                remaining -= take
            if remaining == 0:
                break
        if remaining:
            return None
    return plan


def hold(levels: MutableMapping[str, list[WarehouseStock]], plan: Sequence[Allocation]) -> None:
    """Apply a plan to in-memory levels so the next allocation in a batch sees it."""
    for a in plan:
        next(s for s in levels[a.sku] if s.warehouse == a.warehouse).reserved += a.quantity


def short_skus(levels: Mapping[str, Sequence[WarehouseStock]], lines: Sequence[Line]) -> list[str]:
    return sorted(
        {
            line.sku
            for line in lines
            if sum(s.free for s in levels.get(line.sku, ())) < line.quantity
        }
    ) or sorted({line.sku for line in lines})
