"""Rows and domain objects to the JSON the API answers with (plain dicts: orjson encodes them)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

from orderflow.domain.order import NEW_ORDER_STATUS
from orderflow.ports.orders import NewOrder, OrderRow
from orderflow.web.problems import ProblemError


def _utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def new_order_json(order: NewOrder, at: datetime) -> dict[str, Any]:
    currency = order.priced.total.currency
    return {
        "id": order.id,
        "status": NEW_ORDER_STATUS.value,
        "status_reason": None,
        "customer_id": order.customer_id,
        "lines": [
            {
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": _money(line.unit_price.amount, currency),
                "line_total": _money(line.total.amount, currency),
            }
            for line in order.priced.lines
        ],
        "total": _money(order.priced.total.amount, currency),
        "shipping_address": dict(order.shipping_address),
        "created_at": at,
        "updated_at": at,
    }


def order_json(row: OrderRow) -> dict[str, Any]:
    currency = row["currency"]
    body: dict[str, Any] = {
        "id": row["id"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "customer_id": row["customer_id"],
        "lines": [
            {
                "sku": line["sku"],
                "name": line["name"],
                "quantity": line["quantity"],
                "unit_price": _money(line["unit_amount"], currency),
                "line_total": _money(line["line_amount"], currency),
            }
            for line in row["lines"]
        ],
        "total": _money(row["total_amount"], currency),
        "shipping_address": row["shipping_address"],
        "created_at": _utc(row["created_at"]),
        "updated_at": _utc(row["updated_at"]),
    }
    if "timeline" in row:
        body["timeline"] = [
            {
                "seq": e["seq"],
                "type": e["type"],
                "status": e["status"],
                "previous_status": e["previous_status"],
                "reason": e["reason"],
                "actor": e["actor"],
                "at": _utc(e["at"]),
            }
            for e in row["timeline"]
        ]
    return body


def product_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "sku": row["sku"],
        "name": row["name"],
        "price": _money(row["price_amount"], row["currency"]),
        "available": int(row["available"]),
    }


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ProblemError(400, "Bad cursor", "the cursor is not one this API issued") from exc
    if not (
        isinstance(parts, list)
        and len(parts) == size
        # Printable only: a NUL would reach PostgreSQL, which refuses it with an error.
        and all(isinstance(p, str) and p.isprintable() for p in parts)
    ):
        raise ProblemError(400, "Bad cursor", "the cursor is not one this API issued")
    return parts


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """The cursor's time in UTC (naive taken as UTC) and order id. A time that leaves the
    calendar in UTC (year 1 at +14:00) is refused here: the database driver would fail on it."""
    created, oid = decode_cursor(cursor, 2)
    try:
        # astimezone raises OverflowError when UTC is past the calendar's ends.
        return _utc(datetime.fromisoformat(created)).astimezone(UTC), oid
    except (ValueError, OverflowError) as exc:
        raise ProblemError(400, "Bad cursor", "the cursor is not one this API issued") from exc
