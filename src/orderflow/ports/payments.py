"""The payment provider port.

Every answer is a type: Approved (with the provider's reference) or Declined (with its reason).

PaymentError
└── TransientPaymentError   the provider could not answer now: retry later
    ├── ProviderUnreachableError   no answer at all (timeout, connection, 5xx): a sign of an
    │                              outage, counted by the circuit breaker
    └── ProviderUnavailableError   its circuit is open (it kept failing): not even tried
A plain TransientPaymentError is the provider answering "try this call again later": the provider
is up, so it does not count towards opening the circuit.
(declines are not errors: they are an answer)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orderflow.domain.money import Money


class PaymentError(Exception):
    pass


class TransientPaymentError(PaymentError):
    pass


class ProviderUnreachableError(TransientPaymentError):
    pass


class ProviderUnavailableError(TransientPaymentError):
    """The call failed fast: the provider failed too often lately to be worth calling."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds until the provider is tried again


@dataclass(frozen=True, slots=True)
class Approved:
    reference: str  # the provider's id for the authorization, capture or refund


@dataclass(frozen=True, slots=True)
class Declined:
    reason: str  # the provider's code, e.g. "card_declined"


ProviderAnswer = Approved | Declined


class PaymentGateway(Protocol):
    """Every call carries an idempotency key: the same key always gets the same answer, so a
    retried call never charges twice."""

    async def authorize(
        self, *, idempotency_key: str, amount: Money, token: str
    ) -> ProviderAnswer: ...

    async def capture(self, *, idempotency_key: str, authorization: str) -> ProviderAnswer: ...

    async def refund(self, *, idempotency_key: str, capture: str) -> ProviderAnswer: ...
