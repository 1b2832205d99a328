"""SqlCatalog: products, warehouses and stock levels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.tables import products, stock, warehouses
from orderflow.domain.money import Money
from orderflow.domain.pricing import CatalogEntry


class SqlCatalog:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def entries(self) -> dict[str, CatalogEntry]:
        rows = await self._conn.execute(select(products))
        return {r.sku: CatalogEntry(r.sku, r.name, Money(r.price_amount, r.currency)) for r in rows}

    async def products_with_stock(self, after_sku: str | None, limit: int) -> list[dict[str, Any]]:
        available = func.coalesce(func.sum(stock.c.on_hand - stock.c.reserved), 0)
        query = (
            select(
                products.c.sku,
                products.c.name,
                products.c.price_amount,
                products.c.currency,
                available.label("available"),
            )
            .select_from(products.outerjoin(stock, stock.c.sku == products.c.sku))
            .group_by(products.c.sku, products.c.name, products.c.price_amount, products.c.currency)
            .order_by(products.c.sku)
            .limit(limit)
        )
        if after_sku is not None:
            query = query.where(products.c.sku > after_sku)
        return [dict(r) for r in (await self._conn.execute(query)).mappings()]

    async def is_empty(self) -> bool:
        count = await self._conn.scalar(select(func.count()).select_from(products))
        return not count

    async def add_warehouses(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._conn.execute(insert(warehouses), list(rows))

    async def add_products(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._conn.execute(insert(products), list(rows))

    async def add_stock(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._conn.execute(insert(stock), list(rows))
