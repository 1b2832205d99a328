"""GuardedPaymentGateway: a provider call is bounded by a timeout (then a transient error); after
`threshold` failures in a row the circuit opens and calls fail fast (transient, the provider not
called), each state change logged once; after `reset_after` the provider is tried again and a
success closes the circuit by itself. Declines are answers and never open it."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from orderflow.adapters.payments.breaker import GuardedPaymentGateway
from orderflow.domain import messages as m
from orderflow.domain.money import Money
from orderflow.ports.payments import (
    Approved,
    Declined,
    ProviderUnavailableError,
    ProviderUnreachableError,
    TransientPaymentError,
)
from orderflow.services.payment.handler import PaymentHandler
from orderflow.services.runtime.handler import TransientError
from tests.unit.services.fakes import FakePaymentGateway, FakeStorage

USD = Money(1200, "USD")
RESET = 0.2  # seconds the circuit stays open


def guarded(provider: FakePaymentGateway, timeout: float = 5.0) -> GuardedPaymentGateway:
    return GuardedPaymentGateway(provider, timeout=timeout, threshold=3, reset_after=RESET)


async def authorize(gateway: GuardedPaymentGateway, key: str, token: str = "tok_visa") -> object:
    return await gateway.authorize(idempotency_key=key, amount=USD, token=token)


# Without the timeout these would hang: pytest-timeout fails them instead.
@pytest.mark.timeout(20)
async def test_a_provider_that_does_not_answer_in_time_is_a_transient_error() -> None:
    provider = FakePaymentGateway(hangs=True)
    gateway = guarded(provider, timeout=0.05)
    with pytest.raises(ProviderUnreachableError, match=r"did not answer within 0\.05 s"):
        await authorize(gateway, "authorize:o-1")
    assert provider.calls == ["authorize:o-1"]


@pytest.mark.timeout(20)
async def test_repeated_timeouts_open_the_circuit_and_calls_fail_fast() -> None:
    provider = FakePaymentGateway(hangs=True)
    gateway = guarded(provider, timeout=0.05)
    for i in range(3):
        with pytest.raises(TransientPaymentError):
            await authorize(gateway, f"authorize:o-{i}")
    assert gateway.state == "opened"
    with pytest.raises(ProviderUnavailableError) as failed:
        await authorize(gateway, "authorize:o-9")
    assert provider.calls == [f"authorize:o-{i}" for i in range(3)]  # o-9 never reached it
    assert 0 < failed.value.retry_after <= RESET


@pytest.mark.timeout(20)
async def test_the_circuit_opens_once_logs_once_and_closes_by_itself() -> None:
    provider = FakePaymentGateway(hangs=True)
    gateway = guarded(provider, timeout=0.05)
    with capture_logs() as logs:
        for i in range(3):
            with pytest.raises(TransientPaymentError):
                await authorize(gateway, f"authorize:o-{i}")
        for i in range(5):  # an open circuit: every call fails at once, nothing more is logged
            with pytest.raises(ProviderUnavailableError):
                await authorize(gateway, f"authorize:p-{i}")
        assert len(provider.calls) == 3
        provider.hangs = False  # the provider is back
        await asyncio.sleep(RESET)  # the circuit's own reset time: then it tries the provider
        assert await authorize(gateway, "authorize:o-4") == Approved("auth_1")
    assert gateway.state == "closed"
    changes = [e for e in logs if e["event"].startswith("circuit")]
    assert [(e["event"], e["circuit"]) for e in changes] == [
        ("circuit opened: failing fast", "payment-provider"),
        ("circuit half-opened", "payment-provider"),
        ("circuit closed", "payment-provider"),
    ]
    assert changes[0]["log_level"] == "warning"


async def test_declines_and_retry_answers_never_open_the_circuit() -> None:
    """A provider that answers (a decline, or "retry this call later") is up."""
    provider = FakePaymentGateway(transient_failures=10)
    gateway = guarded(provider)
    for i in range(10):
        with pytest.raises(TransientPaymentError) as failed:
            await authorize(gateway, f"authorize:o-{i}")
        assert not isinstance(failed.value, ProviderUnavailableError)
    for i in range(10):
        assert await authorize(gateway, f"authorize:d-{i}", "tok_decline") == Declined(
            "card_declined"
        )
    assert gateway.state == "closed"
    assert len(provider.calls) == 20


@pytest.mark.timeout(20)
async def test_an_open_circuit_is_a_transient_error_for_the_payment_handler() -> None:
    """Retried later with backoff, never dead-lettered at once as a permanent error would be."""
    gateway = guarded(FakePaymentGateway(hangs=True), timeout=0.05)
    for i in range(3):
        with pytest.raises(TransientPaymentError):
            await authorize(gateway, f"authorize:o-{i}")
    handler = PaymentHandler(gateway, FakeStorage())
    with pytest.raises(TransientError, match="circuit open"):
        await handler.call_out(m.CapturePayment("o-9", 1200, "USD", "tok_visa"))


@pytest.mark.timeout(20)
async def test_the_payment_consumer_holds_off_while_the_circuit_is_open() -> None:
    """The gateway is the payment consumer's Throttle (services/runtime/throttle.py): fetch as
    usual while closed, nothing while open, one message at a time while trying again."""
    provider = FakePaymentGateway(hangs=True)
    gateway = guarded(provider, timeout=0.05)
    assert (gateway.hold_off(), gateway.batch_limit()) == (0.0, None)
    for i in range(3):
        with pytest.raises(TransientPaymentError):
            await authorize(gateway, f"authorize:o-{i}")
    assert 0 < gateway.hold_off() <= RESET
    assert gateway.batch_limit() == 1
    await asyncio.sleep(RESET)
    assert gateway.hold_off() == 0.0  # time to try the provider again: one message
    assert gateway.batch_limit() == 1
