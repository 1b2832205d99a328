"""The demo catalog: two warehouses, a handful of products, one of them scarce."""

from __future__ import annotations

from orderflow.adapters.db.catalog import SqlCatalog
from orderflow.adapters.db.engine import Database

WAREHOUSES = [("east", "East coast DC"), ("west", "West coast DC")]

PRODUCTS = [
    ("TSHIRT-BLK", "Black T-shirt", 2500),
    ("HOODIE-GRY", "Grey hoodie", 5500),
    ("MUG-WHT", "White mug", 1200),
    ("CAP-RED", "Red cap", 1800),
    ("SOCKS-3PK", "Socks, 3 pack", 999),
    ("STICKER-PK", "Sticker pack", 299),
    ("POSTER-A2", "Poster A2", 1500),
    ("BOTTLE-STL", "Steel bottle", 2200),
    ("NOTEBOOK-A5", "Notebook A5", 800),
    ("LIMITED-TEE", "Limited edition tee", 4500),
]

PLENTY = 1_000_000
# The scarce product, split across both warehouses so a reservation may need both.
SCARCE = {"LIMITED-TEE": {"east": 10, "west": 15}}


async def seed_demo_catalog(db: Database, *, only_if_empty: bool = True) -> bool:
    """Insert the demo catalog; returns False when a catalog was already there."""
    async with db.write() as conn:
        catalog = SqlCatalog(conn)
        if only_if_empty and not await catalog.is_empty():
            return False
        await catalog.add_warehouses(
            [{"code": c, "name": n, "priority": p} for p, (c, n) in enumerate(WAREHOUSES)]
        )
        await catalog.add_products(
            [{"sku": s, "name": n, "price_amount": p, "currency": "USD"} for s, n, p in PRODUCTS]
        )
        await catalog.add_stock(
            [
                {
                    "sku": sku,
                    "warehouse": code,
                    "on_hand": SCARCE.get(sku, {}).get(code, PLENTY),
                    "reserved": 0,
                }
                for sku, _, _ in PRODUCTS
                for code, _ in WAREHOUSES
            ]
        )
    return True
