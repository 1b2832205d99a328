"""The payment provider port.

PaymentError
├── TransientPaymentError   the provider could not answer now (timeout, 5xx): retry later
└── (declines are not errors: they are a PaymentResult with approved=False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orderflow.domain.money import Money


class PaymentError(Exception):
    pass


class TransientPaymentError(PaymentError):
    pass


@dataclass(frozen=True, slots=True)
class PaymentResult:
    approved: bool
    reference: str  # the provider's id for the authorization, capture or refund
    decline_reason: str | None = None


class PaymentGateway(Protocol):
    """Every call carries an idempotency key: the same key always gets the same result, so a
    retried call never charges twice."""

    async def authorize(
        self, *, idempotency_key: str, amount: Money, token: str
    ) -> PaymentResult: ...

    async def capture(self, *, idempotency_key: str, authorization: str) -> PaymentResult: ...

    async def refund(self, *, idempotency_key: str, capture: str) -> PaymentResult: ...
