"""Pricing an order from the catalog. Prices never come from the client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orderflow.domain.errors import DomainError
from orderflow.domain.money import Money


class UnknownProductError(DomainError):
    def __init__(self, skus: Sequence[str]) -> None:
        super().__init__(f"unknown sku: {', '.join(skus)}")
        self.skus = tuple(skus)


class MixedCurrencyError(DomainError):
    pass


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    sku: str
    name: str
    price: Money


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku: str
    name: str
    quantity: int
    unit_price: Money

    @property
    def total(self) -> Money:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class PricedOrder:
    lines: tuple[PricedLine, ...]
    total: Money


def price_order(
    requested: Sequence[tuple[str, int]], catalog: Mapping[str, CatalogEntry]
) -> PricedOrder:
    missing = [sku for sku, _ in requested if sku not in catalog]
    if missing:
        raise UnknownProductError(missing)
    lines = tuple(
        PricedLine(sku, catalog[sku].name, quantity, catalog[sku].price)
        for sku, quantity in requested
    )
    currency = lines[0].unit_price.currency
    if any(line.unit_price.currency != currency for line in lines):
        raise MixedCurrencyError("all lines of an order must be priced in one currency")
    total = Money.zero(currency)
    for line in lines:
        total = total + line.total
    return PricedOrder(lines, total)
