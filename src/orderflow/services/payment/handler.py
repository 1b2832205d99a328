"""PaymentHandler: authorize + capture for CapturePayment, refund for RefundPayment.

Provider calls happen outside the database transaction and carry idempotency keys derived from the
order id, so a redelivered command (after a crash or a timeout) gets the provider's earlier answer
instead of a second charge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.payments import SqlPaymentLedger
from orderflow.domain import messages as m
from orderflow.domain.money import Money
from orderflow.ports.payments import PaymentGateway, PaymentResult, TransientPaymentError
from orderflow.services.runtime.handler import BatchContext, PermanentError, TransientError


def capture_key(order_id: str) -> str:
    return f"capture:{order_id}"


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

    async def _refund(self, order_id: str) -> PaymentResult | None:
        async with self._db.read() as conn:
            capture = await SqlPaymentLedger(conn).capture_of(order_id)
        if capture is None:
            return None  # nothing was captured, so there is nothing to give back
        return await self._gateway.refund(idempotency_key=f"refund:{order_id}", capture=capture[0])

    async def apply(
        self, ctx: BatchContext, message: m.Message, called: object
    ) -> Sequence[m.Message]:
        ledger = SqlPaymentLedger(ctx.conn)
        oid = message.order_id
        match message, called:
            case m.CapturePayment(), PaymentResult(approved=False, decline_reason=reason):
                return [m.PaymentDeclined(oid, reason or "declined")]
            case m.CapturePayment(amount=amount, currency=currency), PaymentResult(reference=ref):
                await ledger.record(
                    idempotency_key=capture_key(oid),
                    order_id=oid,
                    kind="capture",
                    provider_reference=ref,
                    amount=amount,
                    currency=currency,
                )
                return [m.PaymentCaptured(oid, ref, amount, currency)]
            case m.RefundPayment(), PaymentResult(approved=True, reference=ref):
                capture = await ledger.capture_of(oid)
                amount, currency = (capture[1], capture[2]) if capture else (0, "USD")
                await ledger.record(
                    idempotency_key=f"refund:{oid}",
                    order_id=oid,
                    kind="refund",
                    provider_reference=ref,
                    amount=amount,
                    currency=currency,
                )
                return [m.PaymentRefunded(oid, ref)]
            case m.RefundPayment(), None:
                return []
        raise PermanentError(f"unexpected provider answer {called!r} to {type(message).__name__}")
