"""ReservationExpiry: stock held for an order that is not paid within the TTL goes back on the
shelf, and the order ends cancelled with the reason.

The expiry is an event applied under the order's row lock like any other (transitions.py), so it
races a late payment answer safely: whichever commits first wins the row. Expired first, the
order is cancelled and its stock released, and the PaymentCaptured that arrives afterwards is
refunded (the state machine's compensation for given-up orders); paid first, the order is no
longer reserved and the expiry leaves it alone. Never paid with its stock released.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from orderflow.domain import messages as m
from orderflow.domain.order import OrderStatus
from orderflow.messaging.envelope import encode
from orderflow.ports.storage import Storage
from orderflow.services.orders.transitions import apply_events

log = structlog.get_logger()

ACTOR = "expiry"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ReservationExpiry:
    def __init__(
        self,
        storage: Storage,
        ttl: float,
        *,
        batch: int = 200,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._storage = storage
        self._ttl = timedelta(seconds=ttl)
        self._batch = batch
        self._clock = clock
        # Often enough that stock is back within a tenth of the TTL of its expiry, at most every
        # 30 s, and no more than once a second.
        self.interval = min(max(ttl / 10, 1.0), 30.0)

    async def sweep(self) -> int:
        """Expire what is due, a batch per transaction; returns how many orders expired."""
        total = 0
        while True:
            expired = await self._expire_batch()
            total += expired
            if expired < self._batch:
                return total

    async def _expire_batch(self) -> int:
        reason = f"reservation expired: not paid within {self._ttl.total_seconds():.0f}s"
        async with self._storage.write() as tx:
            due = await tx.watch.entered_before(
                OrderStatus.RESERVED, self._clock() - self._ttl, self._batch
            )
            if not due:
                return 0
            events = [m.ReservationExpired(oid, reason) for oid in due]
            produced = await apply_events(tx.orders, events, actor=ACTOR)
            await tx.outbox.add([encode(msg) for out in produced if out for msg in out])
        for oid in due:
            log.info("reservation expired", order_id=oid, reason=reason)
        return len(due)
