"""What the payment handler's call-out learnt from the provider: one type per answer.

Each answer carries what `apply` needs to record it (order, reference, amount), so recording is
a match over these types that mypy checks is exhaustive.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderflow.ports.ledger import LedgerEntry


@dataclass(frozen=True, slots=True)
class Captured:
    order_id: str
    reference: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class CaptureDeclined:
    """The authorization or the capture was declined."""

    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Refunded:
    capture: LedgerEntry  # what was given back
    reference: str


@dataclass(frozen=True, slots=True)
class RefundDeclined:
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class NothingToRefund:
    """No capture is recorded for the order: no money was taken, none is owed back."""

    order_id: str


PaymentAnswer = Captured | CaptureDeclined | Refunded | RefundDeclined | NothingToRefund
