"""PaymentHandler against a fake provider and a fake ledger: every provider answer has its own
outcome, and a redelivered command never moves money twice."""

from __future__ import annotations

import pytest

from orderflow.domain import messages as m
from orderflow.ports.broker import Ack, Retry
from orderflow.ports.ledger import LedgerEntry
from orderflow.services.payment.answers import (
    Captured,
    CaptureDeclined,
    NothingToRefund,
    RefundDeclined,
    Refunded,
)
from orderflow.services.payment.handler import PaymentHandler
from orderflow.services.runtime.handler import PermanentError, TransientError
from tests.unit.services.fakes import FakePaymentGateway, FakeStorage
from tests.unit.services.pipeline import Pipeline, delivery

CAPTURE = m.CapturePayment("o-1", 2400, "USD", "tok_visa")


async def run(handler: PaymentHandler, storage: FakeStorage, *messages: m.Message) -> list[object]:
    """call_out, then apply in one transaction: what the runner does, without its id check."""
    answers = [await handler.call_out(msg) for msg in messages]
    async with storage.write() as tx:
        return list(await handler.apply(tx, list(zip(messages, answers, strict=True))))


def setup(gateway: FakePaymentGateway | None = None) -> tuple[PaymentHandler, FakeStorage]:
    storage = FakeStorage()
    return PaymentHandler(gateway or FakePaymentGateway(), storage), storage


async def test_a_capture_is_authorized_then_captured_under_the_orders_keys() -> None:
    gateway = FakePaymentGateway()
    handler, _ = setup(gateway)
    answer = await handler.call_out(CAPTURE)
    assert isinstance(answer, Captured)
    assert (answer.order_id, answer.amount, answer.currency) == ("o-1", 2400, "USD")
    assert gateway.calls == ["authorize:o-1", "capture:o-1"]


async def test_a_redelivered_capture_charges_once_and_records_one_entry() -> None:
    gateway = FakePaymentGateway()
    handler, storage = setup(gateway)
    first = await run(handler, storage, CAPTURE)
    again = await run(handler, storage, CAPTURE, CAPTURE)
    [entry] = storage.state.ledger.values()
    assert entry == LedgerEntry(
        "capture:o-1", "o-1", "capture", entry.provider_reference, 2400, "USD"
    )
    # The provider gave the same answer to the same keys: one capture, one reference.
    assert gateway.approved("capture") == ["capture:o-1"]
    assert first == [[m.PaymentCaptured("o-1", entry.provider_reference, 2400, "USD")]]
    assert again == first * 2


async def test_a_declined_card_declines_with_the_providers_reason_and_records_nothing() -> None:
    gateway = FakePaymentGateway()
    handler, storage = setup(gateway)
    declined = m.CapturePayment("o-1", 2400, "USD", "tok_decline")
    assert await handler.call_out(declined) == CaptureDeclined("o-1", "card_declined")
    assert await run(handler, storage, declined) == [[m.PaymentDeclined("o-1", "card_declined")]]
    assert storage.state.ledger == {}
    assert "capture:o-1" not in gateway.calls  # a declined authorization is not captured


async def test_a_refund_gives_back_the_captured_amount_once() -> None:
    gateway = FakePaymentGateway()
    handler, storage = setup(gateway)
    await run(handler, storage, CAPTURE)
    refund = m.RefundPayment("o-1")
    answer = await handler.call_out(refund)
    assert isinstance(answer, Refunded)
    results = await run(handler, storage, refund, refund)
    refunds = [e for e in storage.state.ledger.values() if e.kind == "refund"]
    assert [(e.idempotency_key, e.amount, e.currency) for e in refunds] == [
        ("refund:o-1", 2400, "USD")
    ]
    assert gateway.approved("refund") == ["refund:o-1"]
    assert results == [[m.PaymentRefunded("o-1", refunds[0].provider_reference)]] * 2


async def test_nothing_captured_means_nothing_to_refund_and_no_provider_call() -> None:
    gateway = FakePaymentGateway()
    handler, storage = setup(gateway)
    assert await handler.call_out(m.RefundPayment("o-1")) == NothingToRefund("o-1")
    assert await run(handler, storage, m.RefundPayment("o-1")) == [[]]
    assert gateway.calls == []


async def test_a_declined_refund_is_reported_as_an_event_not_a_failure() -> None:
    gateway = FakePaymentGateway()
    handler, storage = setup(gateway)
    await run(handler, storage, CAPTURE)
    gateway.refunds_declined = True
    refund = m.RefundPayment("o-1")
    assert await handler.call_out(refund) == RefundDeclined("o-1", "refund_window_closed")
    assert await run(handler, storage, refund) == [
        [m.RefundDeclined("o-1", "refund_window_closed")]
    ]
    assert [e.kind for e in storage.state.ledger.values()] == ["capture"]


async def test_a_provider_timeout_is_transient_and_retried_with_the_same_keys() -> None:
    gateway = FakePaymentGateway(transient_failures=1)
    handler, _ = setup(gateway)
    with pytest.raises(TransientError):
        await handler.call_out(CAPTURE)
    assert isinstance(await handler.call_out(CAPTURE), Captured)
    assert gateway.calls == ["authorize:o-1", "authorize:o-1", "capture:o-1"]


async def test_the_runner_retries_a_timeout_and_acknowledges_a_redelivery_once_applied() -> None:
    pipeline = Pipeline(FakePaymentGateway(transient_failures=1))
    command = delivery(CAPTURE)
    [(_, first)] = await pipeline.payment.process([command])
    [(_, second)] = await pipeline.payment.process([command])
    [(_, third)] = await pipeline.payment.process([command])  # the ack was lost: redelivered
    assert isinstance(first, Retry)
    assert (second, third) == (Ack(), Ack())
    assert len(pipeline.storage.state.ledger) == 1
    published = [r.message.message_id for r in pipeline.storage.state.outbox]
    assert len(published) == 1  # one PaymentCaptured, not one per delivery


async def test_a_message_payment_does_not_handle_is_a_permanent_error() -> None:
    handler, _ = setup()
    with pytest.raises(PermanentError):
        await handler.call_out(m.ReserveStock("o-1", ()))
