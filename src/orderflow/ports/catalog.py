"""The catalog as the API reads it: prices to order from, and products with their free stock."""

from __future__ import annotations

from typing import Any, Protocol

from orderflow.domain.pricing import CatalogEntry

# sku, name, price_amount, currency and available (free units over every warehouse).
ProductRow = dict[str, Any]


class Catalog(Protocol):
    async def entries(self) -> dict[str, CatalogEntry]: ...

    async def products_with_stock(self, after_sku: str | None, limit: int) -> list[ProductRow]:
        """Products by sku, from the one after `after_sku`."""
        ...
