"""The stream's wire format (JSON), shared by the WebSocket and SSE endpoints.

Server to client: `subscribed`, `status` (one status change), `resync_required`, `heartbeat`,
`error`. Client to server (WebSocket only; SSE takes the same fields as query parameters):
`subscribe` and `ping`. docs/api.md describes every field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from orderflow.ports.status_changes import StatusChange

MAX_FRAME = 4096  # bytes of one client message; a subscribe needs a few hundred
ScopeName = Literal["mine", "all", "order"]
_SCOPES: dict[object, ScopeName] = {"mine": "mine", "all": "all", "order": "order"}


class BadMessageError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Subscribe:
    scope: ScopeName
    order_id: str | None
    last_event_id: str | None


@dataclass(frozen=True, slots=True)
class Ping:
    pass


def subscribe_from(fields: dict[str, Any]) -> Subscribe:
    """A subscribe request from a message's or a query string's fields."""
    order_id = fields.get("order_id")
    scope = fields.get("scope") or ("order" if order_id is not None else "mine")
    if scope not in _SCOPES:
        raise BadMessageError("bad_scope", "scope must be mine, all or order")
    if scope == "order" and not _short_text(order_id, 64):
        raise BadMessageError("bad_order_id", "scope order needs an order_id")
    if scope != "order" and order_id is not None:
        raise BadMessageError("bad_order_id", "order_id goes with scope order only")
    last = fields.get("last_event_id")
    if last is not None and not _short_text(last, 4096):
        raise BadMessageError("bad_event_id", "last_event_id must be a short string")
    named = _SCOPES[scope]
    return Subscribe(named, order_id, last or None)


def parse_client_message(text: str | bytes) -> Subscribe | Ping:
    if len(text) > MAX_FRAME:
        raise BadMessageError("too_big", f"messages are at most {MAX_FRAME} bytes")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadMessageError("malformed_json", "the message is not JSON") from exc
    if not isinstance(data, dict):
        raise BadMessageError("bad_message", "a message is a JSON object with a type")
    match data.get("type"):
        case "subscribe":
            return subscribe_from(data)
        case "ping":
            return Ping()
        case _:
            raise BadMessageError("unknown_type", "type must be subscribe or ping")


def status(change: StatusChange, event_id: str, with_customer: bool) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "status",
        "id": event_id,
        "order_id": change.order_id,
        "status": change.status,
        "previous_status": change.previous_status,
        "reason": change.reason,
        "version": change.version,
        "at": change.at.isoformat(),
    }
    if with_customer:  # admins see whose order it is; a customer knows
        message["customer_id"] = change.customer_id
    return message


def subscribed(request: Subscribe, event_id: str) -> dict[str, Any]:
    return {
        "type": "subscribed",
        "scope": request.scope,
        "order_id": request.order_id,
        "id": event_id,
    }


def resync_required(reason: str) -> dict[str, Any]:
    return {"type": "resync_required", "reason": reason}


def error(code: str, detail: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "detail": detail}


def encode(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _short_text(value: object, limit: int) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= limit
        and value.isprintable()
        and value.isascii()
    )
