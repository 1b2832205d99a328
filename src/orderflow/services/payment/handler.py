"""PaymentHandler: authorize + capture for CapturePayment, refund for RefundPayment.

Provider calls happen outside the database transaction and carry idempotency keys derived from the
order id, so a redelivered command (after a crash or a timeout) gets the provider's earlier answer
instead of a second charge.

A refund the provider declines is recorded on the order's timeline (a RefundDeclined event with the
provider's reason; the order keeps its status): the money is still with the shop, which a person
has to settle with the customer. Retrying would get the same answer under the same key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, assert_never

from orderflow.domain import messages as m
from orderflow.domain.money import Money
from orderflow.ports.ledger import CAPTURE, REFUND, LedgerEntry
from orderflow.ports.payments import Approved, Declined, PaymentGateway, TransientPaymentError
from orderflow.ports.storage import Storage, Writes
from orderflow.services.payment.answers import (
    Captured,
    CaptureDeclined,
    NothingToRefund,
    PaymentAnswer,
    RefundDeclined,
    Refunded,
)
from orderflow.services.runtime.handler import BatchResult, PermanentError, TransientError


def authorize_key(order_id: str) -> str:
    return f"authorize:{order_id}"


def capture_key(order_id: str) -> str:
    return f"capture:{order_id}"


def refund_key(order_id: str) -> str:
    return f"refund:{order_id}"


class PaymentHandler:
    group: ClassVar[str] = "payment"
    topics: ClassVar[tuple[str, ...]] = (m.PAYMENT_COMMANDS,)

    def __init__(self, gateway: PaymentGateway, storage: Storage) -> None:
        self._gateway = gateway
        self._storage = storage

    async def call_out(self, message: m.Message) -> PaymentAnswer:
        try:
            match message:
                case m.CapturePayment():
                    return await self._capture(message)
                case m.RefundPayment():
                    return await self._refund(message.order_id)
        except TransientPaymentError as exc:
            raise TransientError(str(exc)) from exc
        raise PermanentError(f"payment does not handle {type(message).__name__}")

    async def _capture(self, cmd: m.CapturePayment) -> Captured | CaptureDeclined:
        oid = cmd.order_id
        auth = await self._gateway.authorize(
            idempotency_key=authorize_key(oid),
            amount=Money(cmd.amount, cmd.currency),
            token=cmd.payment_token,
        )
        if isinstance(auth, Declined):
            return CaptureDeclined(oid, auth.reason)
        match await self._gateway.capture(
            idempotency_key=capture_key(oid), authorization=auth.reference
        ):
            case Approved(reference=reference):
                return Captured(oid, reference, cmd.amount, cmd.currency)
            case Declined(reason=reason):
                return CaptureDeclined(oid, reason)

    async def _refund(self, order_id: str) -> Refunded | RefundDeclined | NothingToRefund:
        async with self._storage.read() as reads:
            capture = await reads.payments.capture_of(order_id)
        if capture is None:
            return NothingToRefund(order_id)
        match await self._gateway.refund(
            idempotency_key=refund_key(order_id), capture=capture.provider_reference
        ):
            case Approved(reference=reference):
                return Refunded(capture, reference)
            case Declined(reason=reason):
                return RefundDeclined(order_id, reason)

    async def apply(
        self, tx: Writes, batch: Sequence[tuple[m.Message, PaymentAnswer]]
    ) -> list[BatchResult]:
        entries: list[LedgerEntry] = []
        results: list[BatchResult] = []
        for _, answer in batch:
            match answer:
                case Captured(order_id=oid, reference=ref, amount=amount, currency=cur):
                    entries.append(LedgerEntry(capture_key(oid), oid, CAPTURE, ref, amount, cur))
                    results.append([m.PaymentCaptured(oid, ref, amount, cur)])
                case CaptureDeclined(order_id=oid, reason=reason):
                    results.append([m.PaymentDeclined(oid, reason)])
                case Refunded(capture=capture, reference=ref):
                    oid = capture.order_id
                    entries.append(
                        LedgerEntry(
                            refund_key(oid), oid, REFUND, ref, capture.amount, capture.currency
                        )
                    )
                    results.append([m.PaymentRefunded(oid, ref)])
                case RefundDeclined(order_id=oid, reason=reason):
                    results.append([m.RefundDeclined(oid, reason)])
                case NothingToRefund():
                    results.append([])
                case _:
                    assert_never(answer)
        await tx.payments.record(entries)
        return results
