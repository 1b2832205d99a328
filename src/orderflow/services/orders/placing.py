"""Placing an order: price it from the catalog, then have the intake store it durably.

UnknownProductError, MixedCurrencyError   (domain) the order cannot be priced
OverloadedError                           too many orders wait for a commit: try later
BacklogFullError                          the pipeline is too far behind: try later
IdempotencyConflictError                  the idempotency key was used for another request
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from orderflow.domain.pricing import CatalogEntry, price_order
from orderflow.ports.orders import NewOrder
from orderflow.services.orders.backlog import BacklogGate
from orderflow.services.orders.intake import Accepted, OrderIntake


class PriceList(Protocol):
    async def entries(self, skus: Iterable[str]) -> Mapping[str, CatalogEntry]:
        """The catalog, current at least for these skus."""
        ...


@dataclass(frozen=True, slots=True)
class OrderRequest:
    customer_id: str
    email: str | None
    lines: Sequence[tuple[str, int]]  # sku, quantity
    payment_token: str
    shipping_address: Mapping[str, Any]
    idempotency_key: str | None = None
    request_hash: str | None = None  # what the key was used for: the same key, the same hash


@dataclass(frozen=True, slots=True)
class Placed:
    order: NewOrder  # as asked for now; a replayed request's order was stored earlier
    accepted: Accepted


async def place_order(
    intake: OrderIntake,
    prices: PriceList,
    request: OrderRequest,
    backlog: BacklogGate | None = None,
) -> Placed:
    """Returns once the order is durable (or the idempotency key's earlier order is found)."""
    if backlog is not None:
        backlog.check()
    catalog = await prices.entries(sku for sku, _ in request.lines)
    order = NewOrder(
        id=str(uuid.uuid4()),
        customer_id=request.customer_id,
        priced=price_order(request.lines, catalog),
        payment_token=request.payment_token,
        shipping_address=request.shipping_address,
        idempotency_key=request.idempotency_key,
        request_hash=request.request_hash,
    )
    return Placed(order, await intake.submit(order, request.email))
