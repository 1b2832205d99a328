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


# What each field annotation of a message admits. A wrongly typed field (an order id that is a
# list) would otherwise pass decoding and fail later, outside any one message's savepoint,
# taking its whole batch down with it on every redelivery.
_ADMITS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
}
_LINES = "tuple[Line, ...]"


def _check_types(message: object) -> None:
    for f in fields(message):  # type: ignore[arg-type]
        value = getattr(message, f.name)
        if f.type == _LINES:
            for line in value:
                _check_types(line)
            continue
        admits = _ADMITS[str(f.type)]
        if isinstance(value, bool) or not isinstance(value, admits):
            raise MalformedMessageError(f"{type(message).__name__}.{f.name} must be {f.type}")


def _known_annotations() -> None:
    """Fail at import, not at the first message, when a message gains a field type this module
    cannot check."""
    for cls in [*MESSAGE_TYPES.values(), Line]:
        for f in fields(cls):
            if f.type != _LINES and str(f.type) not in _ADMITS:
                raise TypeError(f"envelope cannot check {cls.__name__}.{f.name}: {f.type}")


_known_annotations()


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
        message = cls(**{k: v for k, v in data.items() if k in names})
        _check_types(message)
        return message
    except MalformedMessageError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedMessageError(f"cannot decode message: {exc!r}") from exc
