"""PaymentHandler: authorize + capture for CapturePayment, refund for RefundPayment.

Provider calls happen outside the database transaction and carry idempotency keys derived from the
order id, so a redelivered command (after a crash or a timeout) gets the provider's earlier answer
instead of a second charge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.payments import LedgerEntry, SqlPaymentLedger
from orderflow.domain import messages as m
from orderflow.domain.money import Money
from orderflow.ports.payments import PaymentGateway, PaymentResult, TransientPaymentError
from orderflow.services.runtime.handler import (
    BatchContext,
    BatchResult,
    PermanentError,
    TransientError,
)


def capture_key(order_id: str) -> str:
    return f"capture:{order_id}"


def refund_key(order_id: str) -> str:
    return f"refund:{order_id}"


class PaymentHandler:
    group: ClassVar[str] = "payment"
    topics: ClassVar[tuple[str, ...]] = (m.PAYMENT_COMMANDS,)

    def __init__(self, gateway: PaymentGateway, db: Database) -> None:
        self._gateway = gateway
        self._db = db

    async def call_out(self, message: m.Message) -> object:
        try:
            match message:
                case m.CapturePayment():
                    return await self._capture(message)
                case m.RefundPayment():
                    return await self._refund(message.order_id)
        except TransientPaymentError as exc:
            raise TransientError(str(exc)) from exc
        raise PermanentError(f"payment does not handle {type(message).__name__}")

    async def _capture(self, cmd: m.CapturePayment) -> PaymentResult:
        auth = await self._gateway.authorize(
            idempotency_key=f"authorize:{cmd.order_id}",
            amount=Money(cmd.amount, cmd.currency),
            token=cmd.payment_token,
        )
        if not auth.approved:
            return auth
        return await self._gateway.capture(
            idempotency_key=capture_key(cmd.order_id), authorization=auth.reference
        )

    async def _refund(self, order_id: str) -> tuple[PaymentResult, LedgerEntry] | None:
        async with self._db.read() as conn:
            capture = await SqlPaymentLedger(conn).capture_of(order_id)
        if capture is None:
            return None  # nothing was captured, so there is nothing to give back
        result = await self._gateway.refund(
            idempotency_key=refund_key(order_id), capture=capture.provider_reference
        )
        return result, capture

    async def apply(
        self, ctx: BatchContext, batch: Sequence[tuple[m.Message, object]]
    ) -> list[BatchResult]:
        entries: list[LedgerEntry] = []
        results: list[BatchResult] = []
        for msg, called in batch:
            oid = msg.order_id
            match msg, called:
                case m.CapturePayment(), PaymentResult(approved=False, decline_reason=reason):
                    results.append([m.PaymentDeclined(oid, reason or "declined")])
                case m.CapturePayment(amount=amount, currency=cur), PaymentResult(reference=ref):
                    entries.append(LedgerEntry(capture_key(oid), oid, "capture", ref, amount, cur))
                    results.append([m.PaymentCaptured(oid, ref, amount, cur)])
                case m.RefundPayment(), (PaymentResult(approved=True, reference=ref), capture):
                    assert isinstance(capture, LedgerEntry)
                    entries.append(
                        LedgerEntry(
                            refund_key(oid), oid, "refund", ref, capture.amount, capture.currency
                        )
                    )
                    results.append([m.PaymentRefunded(oid, ref)])
                case m.RefundPayment(), None:
                    results.append([])
                case _:
                    results.append(PermanentError(f"unexpected provider answer {called!r}"))
        await SqlPaymentLedger(ctx.conn).record(entries)
        return results
