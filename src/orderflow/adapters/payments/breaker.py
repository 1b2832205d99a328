"""GuardedPaymentGateway: a PaymentGateway around another, with a timeout on every call and a
circuit breaker (purgatory) around the provider.

A call that takes longer than `timeout` is abandoned and becomes a TransientPaymentError (a
provider that hangs must not hold a worker; idempotency keys make the retry safe). After
`threshold` failures in a row (timeouts, ProviderUnreachableError, unexpected errors; not
declines, and not the provider answering "retry this call", which shows it is up) the circuit
opens: calls fail at once with ProviderUnavailableError, a transient error, so the message is
retried later instead of every worker waiting out the timeout. After `reset_after` seconds the
next call is let through (half-open): success closes the circuit, failure opens it again. Each
change of state is logged once; `state` is what /readyz shows admins.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from orderflow.domain.money import Money
from orderflow.ports.payments import (
    PaymentGateway,
    ProviderAnswer,
    ProviderUnavailableError,
    ProviderUnreachableError,
    TransientPaymentError,
)

log = structlog.get_logger()


class GuardedPaymentGateway:
    def __init__(
        self,
        inner: PaymentGateway,
        *,
        timeout: float,
        threshold: int,
        reset_after: float,
        name: str = "payment-provider",
    ) -> None:
        self._inner = inner
        self._timeout = timeout
        self._reset_after = reset_after
        self.name = name
        self.state = "closed"  # closed | opened | half-opened, as purgatory names them
        self._opened_at = 0.0
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=threshold,
            default_ttl=reset_after,
            exclude=[(TransientPaymentError, _is_an_answer)],
        )
        self._breakers.add_listener(self._on_event)

    def _on_event(self, circuit: str, kind: str, event: Any) -> None:
        if kind != "state_changed" or event.state == self.state:
            return
        self.state = event.state
        if self.state == "opened":
            self._opened_at = time.monotonic()
            log.warning("circuit opened: failing fast", circuit=circuit, retry_in=self._reset_after)
        else:
            log.info(f"circuit {self.state}", circuit=circuit)

    def seconds_until_retry(self) -> float:
        """0 unless the circuit is open; then how long until the provider is tried again."""
        if self.state != "opened":
            return 0.0
        return max(0.0, self._opened_at + self._reset_after - time.monotonic())

    def hold_off(self) -> float:
        """The payment consumer's Throttle: fetch nothing while the circuit is open..."""
        return self.seconds_until_retry()

    def batch_limit(self) -> int | None:
        """...and one message at a time while it is being tried again."""
        return None if self.state == "closed" else 1

    async def authorize(self, *, idempotency_key: str, amount: Money, token: str) -> ProviderAnswer:
        return await self._call(
            lambda: self._inner.authorize(
                idempotency_key=idempotency_key, amount=amount, token=token
            )
        )

    async def capture(self, *, idempotency_key: str, authorization: str) -> ProviderAnswer:
        return await self._call(
            lambda: self._inner.capture(
                idempotency_key=idempotency_key, authorization=authorization
            )
        )

    async def refund(self, *, idempotency_key: str, capture: str) -> ProviderAnswer:
        return await self._call(
            lambda: self._inner.refund(idempotency_key=idempotency_key, capture=capture)
        )

    async def _call(self, call: Callable[[], Awaitable[ProviderAnswer]]) -> ProviderAnswer:
        try:
            async with await self._breakers.get_breaker(self.name):
                try:
                    async with asyncio.timeout(self._timeout):
                        return await call()
                except TimeoutError as exc:
                    raise ProviderUnreachableError(
                        f"payment provider did not answer within {self._timeout:g} s"
                    ) from exc
        except OpenedState as exc:
            wait = self.seconds_until_retry()
            raise ProviderUnavailableError(
                f"payment provider circuit open; next try in {wait:.1f} s", wait
            ) from exc


def _is_an_answer(exc: BaseException) -> bool:
    """A transient error the provider answered with (it is up): not a failure of the circuit."""
    return not isinstance(exc, ProviderUnreachableError)
