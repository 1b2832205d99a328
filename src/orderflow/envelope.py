"""The versioned message envelope every service speaks: JSON via orjson.

{"v": 1, "type": "StockReserved", "id": "<message id>", "data": {...the message's fields...}}
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from typing import Any

import orjson

from orderflow.domain.messages import MESSAGE_TYPES, Line, Message
from orderflow.ports.broker import OutgoingMessage

VERSION = 1


class MalformedMessageError(Exception):
    """The payload is not an envelope we understand; retrying will not help."""


def encode(message: Message, message_id: str | None = None) -> OutgoingMessage:
    mid = message_id or str(uuid.uuid4())
    payload = orjson.dumps(
        {"v": VERSION, "type": type(message).__name__, "id": mid, "data": message}
    )
    return OutgoingMessage(message.topic, message.order_id, mid, payload)


def decode(payload: bytes) -> Message:
    try:
        envelope = orjson.loads(payload)
        cls = MESSAGE_TYPES[envelope["type"]]
        if envelope["v"] != VERSION:
            raise MalformedMessageError(f"unsupported envelope version {envelope['v']!r}")
        data: dict[str, Any] = envelope["data"]
        if "lines" in data:
            data["lines"] = tuple(Line(**line) for line in data["lines"])
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
    except MalformedMessageError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedMessageError(f"cannot decode message: {exc!r}") from exc
