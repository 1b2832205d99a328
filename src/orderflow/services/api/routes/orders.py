"""/api/v1/orders: place, read, list and cancel orders."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Header, Query
from starlette.responses import Response

from orderflow.domain.errors import DomainError, OrderNotCancellableError
from orderflow.domain.identity import Identity
from orderflow.domain.order import OrderStatus
from orderflow.ports.errors import ConcurrentUpdateError
from orderflow.services.api.deps import PROBLEM_RESPONSES, Context, CurrentIdentity
from orderflow.services.api.schemas import CancelIn, OrderIn, OrderOut, OrderPage
from orderflow.services.api.serialize import (
    decode_time_cursor,
    encode_cursor,
    new_order_json,
    order_json,
)
from orderflow.services.orders import cancel, placing
from orderflow.services.orders.backlog import BacklogFullError
from orderflow.services.orders.cancel import OrderNotFoundError
from orderflow.services.orders.intake import IdempotencyConflictError, OverloadedError
from orderflow.services.orders.placing import OrderRequest
from orderflow.web.problems import ProblemError, documented

log = structlog.get_logger()
router = APIRouter(prefix="/api/v1/orders", tags=["orders"])

_NOT_FOUND = documented(404)
_CONFLICT = documented(409)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def _owner_filter(who: Identity) -> str | None:
    """Admins see every order; everyone else only their own (others' look like missing ones)."""
    return None if who.is_admin else who.subject


@router.post(
    "",
    status_code=202,
    response_model=OrderOut,
    responses={**PROBLEM_RESPONSES, **_CONFLICT, **documented(429), **documented(503)},
    summary="Place an order (accepted durably, processed asynchronously)",
)
async def place_order(
    body: OrderIn,
    ctx: Context,
    who: CurrentIdentity,
    idempotency_key: Annotated[
        str | None,
        # Printable ASCII (the IETF draft's sf-string): no C0 or C1 controls in logs or rows.
        Header(alias="Idempotency-Key", min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$"),
    ] = None,
) -> Response:
    request_hash = None
    if idempotency_key is not None:
        canonical = orjson.dumps(body.model_dump(), option=orjson.OPT_SORT_KEYS)
        request_hash = hashlib.sha256(canonical).hexdigest()
    request = OrderRequest(
        customer_id=who.subject,
        email=who.email,
        lines=[(item.sku, item.quantity) for item in body.items],
        payment_token=body.payment.token,
        shipping_address=body.shipping_address.model_dump(),
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    try:
        placed = await placing.place_order(ctx.intake, ctx.catalog, request, ctx.backlog)
    except DomainError as exc:
        raise ProblemError(422, "Order cannot be priced", str(exc)) from exc
    except OverloadedError as exc:
        raise ProblemError(
            503,
            "Overloaded",
            "too many orders are being accepted right now; retry shortly",
            headers={"Retry-After": "1"},
        ) from exc
    except BacklogFullError as exc:
        raise ProblemError(
            429,
            "Overloaded",
            "the order pipeline is behind; retry after the time in Retry-After",
            headers={"Retry-After": str(exc.retry_after)},
            reason="backlog",
        ) from exc
    except IdempotencyConflictError as exc:
        raise ProblemError(
            422,
            "Idempotency key reused",
            "this Idempotency-Key was used with a different request body",
        ) from exc
    accepted, order = placed.accepted, placed.order
    location = {"Location": f"/api/v1/orders/{accepted.order_id}"}
    if accepted.replayed:
        async with ctx.db.read() as reads:
            row = await reads.queries.get(accepted.order_id, who.subject)
        assert row is not None
        del row["timeline"]
        return _json(order_json(row), 202, {**location, "Idempotent-Replayed": "true"})
    log.info("order accepted", order_id=order.id, total=order.priced.total.amount)
    return _json(new_order_json(order, datetime.now(UTC)), 202, location)


@router.get("/{order_id}", response_model=OrderOut, responses={**PROBLEM_RESPONSES, **_NOT_FOUND})
async def get_order(order_id: uuid.UUID, ctx: Context, who: CurrentIdentity) -> Response:
    async with ctx.db.read() as reads:
        row = await reads.queries.get(str(order_id), _owner_filter(who))
    if row is None:
        raise ProblemError(404, "Not Found", f"no order {order_id}")
    return _json(order_json(row))


@router.get("", response_model=OrderPage, responses=PROBLEM_RESPONSES)
async def list_orders(
    ctx: Context,
    who: CurrentIdentity,
    status: OrderStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    after = decode_time_cursor(cursor) if cursor else None
    async with ctx.db.read() as reads:
        rows = await reads.queries.page(
            _owner_filter(who), status.value if status else None, after, limit + 1
        )
    more = len(rows) > limit
    rows = rows[:limit]
    items = [order_json(r) for r in rows]
    next_cursor = None
    if more:
        last = items[-1]
        next_cursor = encode_cursor(last["created_at"].isoformat(), last["id"])
    return _json({"items": items, "next_cursor": next_cursor})


@router.post(
    "/{order_id}/cancel",
    status_code=202,
    response_model=OrderOut,
    responses={**PROBLEM_RESPONSES, **_NOT_FOUND, **_CONFLICT},
    summary="Cancel an order before it ships (stock released, payment refunded)",
)
async def cancel_order(
    order_id: uuid.UUID, ctx: Context, who: CurrentIdentity, body: CancelIn | None = None
) -> Response:
    oid = str(order_id)
    reason = body.reason if body else CancelIn().reason
    actor = f"{'admin' if who.is_admin else 'customer'}:{who.subject}"
    try:
        row = await cancel.cancel_order(
            ctx.db, oid, owner=_owner_filter(who), actor=actor, reason=reason
        )
    except OrderNotFoundError as exc:
        raise ProblemError(404, "Not Found", f"no order {oid}") from exc
    except OrderNotCancellableError as exc:
        raise ProblemError(409, "Order cannot be cancelled", str(exc)) from exc
    except ConcurrentUpdateError as exc:  # it kept changing under every retry
        raise ProblemError(
            409, "Order is changing", "the order is being updated; try again"
        ) from exc
    log.info("order cancelled", order_id=oid, actor=actor)
    return _json(order_json(row), 202)
