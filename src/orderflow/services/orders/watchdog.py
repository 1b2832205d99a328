"""OrderWatchdog: orders that stopped moving get their step sent again, or fail with the reason.

Which orders count as stuck and what happens to them is domain/watchdog.py's StallPolicy; this
finds them (claimed, so two watchdogs never act on one order) and applies the verdict as an
event under the order's row lock, like every other change: a re-drive (OrderStalled) appends a
timeline entry and re-sends the step's command through the outbox; giving up is a
ProcessingFailed from stage "watchdog", which fails the order and undoes what it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from orderflow.domain import messages as m
from orderflow.domain.watchdog import StallPolicy, Verdict
from orderflow.messaging.envelope import encode
from orderflow.ports.storage import Storage
from orderflow.ports.watch import IdleOrder
from orderflow.services.orders.transitions import apply_events

log = structlog.get_logger()

ACTOR = "watchdog"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OrderWatchdog:
    def __init__(
        self,
        storage: Storage,
        policy: StallPolicy,
        *,
        batch: int = 200,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._storage = storage
        self._policy = policy
        self._batch = batch
        self._clock = clock
        # A stuck order is acted on within a fifth of its deadline, checked at most every 30 s.
        self.interval = min(max(min(policy.deadlines.values(), default=30.0) / 5, 1.0), 30.0)

    async def sweep(self) -> int:
        """Act on every stuck order, a batch per transaction; returns how many."""
        total = 0
        while True:
            acted = await self._sweep_batch()
            total += acted
            if acted < self._batch:
                return total

    async def _sweep_batch(self) -> int:
        now = self._clock()
        cutoffs = {s: now - timedelta(seconds=d) for s, d in self._policy.deadlines.items()}
        async with self._storage.write() as tx:
            idle = await tx.watch.idle(cutoffs, self._batch)
            verdicts = [(o, self._verdict(o, now)) for o in idle]
            acting = [(o, v) for o, v in verdicts if v is not None]
            if not acting:
                return 0
            lines = await tx.watch.lines([o.order_id for o, _ in acting])
            events = [self._event(o, v, now, lines.get(o.order_id, ())) for o, v in acting]
            produced = await apply_events(tx.orders, events, actor=ACTOR)
            await tx.outbox.add([encode(msg) for out in produced if out for msg in out])
        for event in events:
            log.warning(
                "order stalled",
                order_id=event.order_id,
                action=type(event).__name__,
                reason=event.reason,
            )
        return len(acting)

    def _verdict(self, order: IdleOrder, now: datetime) -> Verdict | None:
        return self._policy.verdict(
            order.status,
            (now - order.changed_at).total_seconds(),
            (now - order.status_since).total_seconds(),
        )

    def _event(
        self, order: IdleOrder, verdict: Verdict, now: datetime, lines: tuple[m.Line, ...]
    ) -> m.OrderStalled | m.ProcessingFailed:
        in_status = (now - order.status_since).total_seconds()
        reason = self._policy.reason(order.status, verdict, in_status)
        if verdict is Verdict.GIVE_UP:
            return m.ProcessingFailed(order.order_id, ACTOR, reason)
        return m.OrderStalled(order.order_id, order.status.value, reason, lines)
