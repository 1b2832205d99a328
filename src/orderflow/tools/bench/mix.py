"""The order mix: which products, how many lines, which cards; one request body per arrival.

Products come from the catalog the system serves (`GET /api/v1/products`), keeping those with
stock for the whole run, so orders are not rejected merely because the bench emptied a shelf.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

APPROVED = "tok_visa"
DECLINED = "tok_decline"
TRANSIENT = "tok_fail_transient"  # fails twice, then succeeds: the retry path runs

ADDRESS = {
    "name": "Bench Customer",
    "line1": "1 Load St",
    "city": "Testville",
    "postal_code": "12345",
    "country": "US",
}


class CatalogError(Exception):
    """The catalog could not be read or has nothing to order."""


@dataclass(frozen=True)
class Arrival:
    """One order the load will submit: body, idempotency key and the customer it belongs to."""

    index: int
    customer: int
    body: dict[str, Any]
    idempotency_key: str


class OrderMix:
    def __init__(
        self,
        skus: list[str],
        customers: int,
        lines: tuple[int, int],
        max_quantity: int,
        decline_share: float,
        transient_share: float,
        seed: int,
    ) -> None:
        self._skus = skus
        self._customers = customers
        self._lines = (min(lines[0], len(skus)), min(lines[1], len(skus)))
        self._max_quantity = max_quantity
        self._decline = decline_share
        self._transient = transient_share
        self._rng = random.Random(seed)
        # Not from the seed: a key reused by a later run would be answered as a replay (or, with
        # another body, refused with 422) instead of placing an order.
        self._run = uuid.uuid4().hex[:12]

    def next(self, index: int) -> Arrival:
        rng = self._rng
        chosen = rng.sample(self._skus, rng.randint(*self._lines))
        roll = rng.random()
        token = (
            DECLINED
            if roll < self._decline
            else TRANSIENT
            if roll < self._decline + self._transient
            else APPROVED
        )
        body = {
            "items": [{"sku": s, "quantity": rng.randint(1, self._max_quantity)} for s in chosen],
            "shipping_address": ADDRESS,
            "payment": {"token": token},
        }
        # Unique per run and order, like a storefront's key per checkout attempt.
        key = f"bench-{self._run}-{index}"
        return Arrival(index, rng.randrange(self._customers), body, key)


async def ample_skus(
    client: aiohttp.ClientSession, headers: dict[str, str], needed_per_sku: int
) -> list[str]:
    """The skus with at least `needed_per_sku` available (all of them, if none has that many),
    read page by page as any client would."""
    products: list[tuple[str, int]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        async with client.get("/api/v1/products", params=params, headers=headers) as response:
            if response.status != 200:
                raise CatalogError(f"products: {response.status} {await response.text()}")
            page = await response.json()
        products += [(p["sku"], int(p["available"])) for p in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if not products:
        raise CatalogError("the catalog is empty: run `orderflow seed` first")
    ample = [sku for sku, available in products if available >= needed_per_sku]
    return ample or [sku for sku, _ in products]
