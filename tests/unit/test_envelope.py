"""The message envelope: every message round-trips, and what is not a message we understand is
refused at decoding (so it is dead-lettered alone instead of failing its batch later)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orderflow.domain import messages as m
from orderflow.messaging.envelope import MalformedMessageError, decode, encode

SAMPLES: list[m.Message] = [
    m.ReserveStock("o-1", (m.Line("MUG-WHT", 2), m.Line("CAP-RED", 1))),
    m.CapturePayment("o-1", 2400, "USD", "tok_visa"),
    m.PaymentDeclined("o-1", "card_declined"),
    m.ProcessingFailed("o-1", "payment", "retries exhausted"),
    m.ReservationExpired("o-1", "reservation expired"),
    m.OrderStalled("o-1", "pending", "no progress", (m.Line("MUG-WHT", 2),)),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda msg: type(msg).__name__)
def test_every_message_round_trips(message: m.Message) -> None:
    assert decode(encode(message).payload) == message


def envelope(kind: str, data: Any, version: Any = 1) -> bytes:
    return orjson.dumps({"v": version, "type": kind, "id": "x", "data": data})


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(envelope("NoSuchMessage", {}), id="unknown-type"),
        pytest.param(envelope("PaymentDeclined", {"order_id": "o"}, version=2), id="version"),
        pytest.param(envelope("PaymentDeclined", {"order_id": "o"}), id="missing-field"),
        pytest.param(envelope("PaymentDeclined", {"order_id": ["o"], "reason": "x"}), id="list-id"),
        pytest.param(envelope("PaymentDeclined", {"order_id": "o", "reason": 7}), id="int-reason"),
        pytest.param(
            envelope(
                "CapturePayment",
                {"order_id": "o", "amount": "24", "currency": "USD", "payment_token": "t"},
            ),
            id="string-amount",
        ),
        pytest.param(
            envelope(
                "CapturePayment",
                {"order_id": "o", "amount": True, "currency": "USD", "payment_token": "t"},
            ),
            id="bool-amount",
        ),
        pytest.param(
            envelope("ReserveStock", {"order_id": "o", "lines": [{"sku": 1, "quantity": 1}]}),
            id="number-sku",
        ),
    ],
)
def test_what_is_not_a_message_is_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        decode(payload)
