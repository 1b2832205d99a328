"""MeteredPaymentGateway: any PaymentGateway, with each call's latency and outcome in the metrics.

A decorator on the port, wired in bootstrap, so neither the handler nor a provider adapter knows
about metrics. Outcomes: approved, declined, transient_error (will be retried), error (anything
else). There is no circuit breaker in front of the provider yet, so no circuit state is shown.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

from orderflow.domain.money import Money
from orderflow.observability import metrics
from orderflow.ports.payments import Approved, PaymentGateway, ProviderAnswer, TransientPaymentError


class MeteredPaymentGateway:
    def __init__(self, inner: PaymentGateway, provider: str) -> None:
        self._inner = inner
        self._provider = provider

    async def authorize(self, *, idempotency_key: str, amount: Money, token: str) -> ProviderAnswer:
        call = self._inner.authorize(idempotency_key=idempotency_key, amount=amount, token=token)
        return await self._timed("authorize", call)

    async def capture(self, *, idempotency_key: str, authorization: str) -> ProviderAnswer:
        call = self._inner.capture(idempotency_key=idempotency_key, authorization=authorization)
        return await self._timed("capture", call)

    async def refund(self, *, idempotency_key: str, capture: str) -> ProviderAnswer:
        call = self._inner.refund(idempotency_key=idempotency_key, capture=capture)
        return await self._timed("refund", call)

    async def _timed(self, operation: str, call: Awaitable[ProviderAnswer]) -> ProviderAnswer:
        started = time.perf_counter()
        outcome = "error"
        try:
            answer = await call
            outcome = "approved" if isinstance(answer, Approved) else "declined"
            return answer
        except TransientPaymentError:
            outcome = "transient_error"
            raise
        finally:
            seconds = time.perf_counter() - started
            metrics.provider_call(self._provider, operation, outcome, seconds)
