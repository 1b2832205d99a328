"""GET /api/v1/products: the demo catalog with the stock available to order, page by page."""

from __future__ import annotations

import asyncio
from typing import Any

from orderflow.bootstrap import build_database, build_storage
from orderflow.config import Settings
from orderflow.demo.catalog import PLENTY, PRODUCTS, SCARCE, WAREHOUSES
from orderflow.ports.inventory import InventoryChanges
from tests.integration.api.harness import PRODUCTS as PATH
from tests.integration.api.harness import Api
from tests.support.system import customer


def walk(api: Api, limit: int) -> list[list[dict[str, Any]]]:
    who = customer()
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = api.get(PATH, who, **params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


def test_lists_the_demo_catalog_with_available_stock(api: Api) -> None:
    [page] = walk(api, limit=50)
    expected = {
        sku: {
            "sku": sku,
            "name": name,
            "price": {"amount": price, "currency": "USD"},
            "available": sum(SCARCE[sku].values()) if sku in SCARCE else PLENTY * len(WAREHOUSES),
        }
        for sku, name, price in PRODUCTS
    }
    assert {p["sku"]: p for p in page} == expected
    assert [p["sku"] for p in page] == sorted(expected)


def test_cursor_walks_every_product_once(api: Api) -> None:
    pages = walk(api, limit=3)
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    skus = [p["sku"] for page in pages for p in page]
    assert skus == sorted(sku for sku, _, _ in PRODUCTS)


def test_available_stock_falls_only_when_stock_is_reserved(api: Api) -> None:
    # The API alone reserves nothing (inventory does that), so placing an order changes nothing.
    before = walk(api, limit=100)
    assert api.place(customer(), [("LIMITED-TEE", 2)]).status_code == 202
    assert walk(api, limit=100) == before


def _available(api: Api, sku: str) -> int:
    [product] = [p for page in walk(api, limit=100) for p in page if p["sku"] == sku]
    return int(product["available"])


async def _reserve(api: Api, sku: str, warehouse: str, quantity: int) -> None:
    """Hold (or, negative, give back) stock as the inventory service's repository does."""
    storage = build_storage(build_database(Settings(data_dir=api.system.data_dir)))
    try:
        async with storage.write() as tx:
            await tx.inventory.write(InventoryChanges({(sku, warehouse): [0, quantity]}))
    finally:
        await storage.dispose()


async def test_available_stock_is_on_hand_less_what_is_reserved(api: Api) -> None:
    on_hand = sum(SCARCE["LIMITED-TEE"].values())
    assert await asyncio.to_thread(_available, api, "LIMITED-TEE") == on_hand

    await _reserve(api, "LIMITED-TEE", "west", 4)
    assert await asyncio.to_thread(_available, api, "LIMITED-TEE") == on_hand - 4

    await _reserve(api, "LIMITED-TEE", "west", -4)
    assert await asyncio.to_thread(_available, api, "LIMITED-TEE") == on_hand
