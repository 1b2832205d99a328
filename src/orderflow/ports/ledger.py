"""The payments ledger: the captures and refunds the provider confirmed for each order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

CAPTURE, REFUND = "capture", "refund"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    idempotency_key: str
    order_id: str
    kind: str  # CAPTURE | REFUND
    provider_reference: str
    amount: int
    currency: str


class PaymentLedger(Protocol):
    async def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Idempotent: an entry already recorded under its key is left as it was."""
        ...

    async def capture_of(self, order_id: str) -> LedgerEntry | None: ...
