"""Dead letters as an admin handles them (the admin API and `orderflow dlq`): list, show, replay,
discard. A dead letter is named by its consumer group and its position there.

DeadLetterNotFoundError        no such group, or no such dead letter (any more: replayed or
                               discarded already, so repeating a command changes nothing)
OrderNotResumableError         (domain) the dead letter would carry on a failed order whose
                               failure gave back stock it held or money it took

Replay delivers the message to its group again. Most dead letters failed their order (the
consumer reported it: `failed`, stock released, capture refunded), and a failed order ignores
what comes after, so replaying a message that moves an order on first resumes its order
(failed -> pending, on its timeline with the admin as actor), in one transaction, then replays;
the message's success then carries the order on to the end. That is only sound while the order
never held stock nor took money: those went back when it failed, and one message cannot take
them again, so such an order is refused (its customer must order again; discard the letter).
A compensation (a release, a refund) or a message whose order is live or finished is replayed as
it is: a refund that failed for a cancelled order, replayed once the provider is back, refunds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from orderflow.domain import messages as m
from orderflow.domain.errors import OrderNotResumableError
from orderflow.domain.order import OrderStatus
from orderflow.messaging.envelope import MalformedMessageError, decode, encode
from orderflow.ports.attempts import FailedAttempt
from orderflow.ports.broker import Broker, DeadLetterRecord
from orderflow.ports.storage import Storage
from orderflow.services.orders.transitions import apply_events

log = structlog.get_logger()

# Messages that undo or report, never move an order on: replayed as they are.
_COMPENSATION = (
    m.ReleaseStock,
    m.RefundPayment,
    m.StockReleased,
    m.PaymentRefunded,
    m.RefundDeclined,
    m.ProcessingFailed,
)


class DeadLetterNotFoundError(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    record: DeadLetterRecord
    message: m.Message | None  # None: the payload is not a message we can read

    @property
    def message_type(self) -> str | None:
        return None if self.message is None else type(self.message).__name__

    @property
    def order_id(self) -> str | None:
        return None if self.message is None else self.message.order_id

    @property
    def id(self) -> str:
        return f"{self.record.group}/{self.record.position}"

    def summary(self) -> dict[str, Any]:
        """What a listing shows (the API's and the CLI's JSON)."""
        r = self.record
        return {
            "id": self.id,
            "group": r.group,
            "position": r.position,
            "topic": r.topic,
            "order_id": self.order_id,
            "message_id": r.message_id,
            "message_type": self.message_type,
            "attempts": r.attempts,
            "reason": r.reason,
        }

    def payload(self) -> Any:
        """The payload as JSON if it is JSON, else as text."""
        try:
            return orjson.loads(self.record.payload)
        except orjson.JSONDecodeError:
            return self.record.payload.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class DeadLetterDetail:
    view: DeadLetterView
    attempts: list[FailedAttempt]  # every failed attempt the consumer recorded, oldest first
    order_status: str | None  # None: no such order here

    def as_json(self) -> dict[str, Any]:
        return {
            **self.view.summary(),
            "payload": self.view.payload(),
            "order_status": self.order_status,
            "attempt_log": [
                {
                    "attempt": a.attempt,
                    "outcome": a.outcome,
                    "error": a.error,
                    "failed_at": a.failed_at,
                }
                for a in self.attempts
            ],
        }


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a listing goes on: after `position` in `group`, then the groups after it."""

    group: str
    position: int


class DeadLetters:
    def __init__(self, broker: Broker, storage: Storage, groups: Sequence[str]) -> None:
        self._broker = broker
        self._storage = storage
        self.groups = tuple(groups)

    async def page(
        self, group: str | None, after: Cursor | None, limit: int
    ) -> tuple[list[DeadLetterView], Cursor | None]:
        """Up to `limit` dead letters, oldest first per group (the groups in order), and the
        cursor of the next page (None: this was the last)."""
        groups = self.groups if group is None else (self._known(group),)
        if after is not None:
            groups = groups[groups.index(self._known(after.group)) :]
        found: list[DeadLetterView] = []
        for name in groups:
            start = after.position if after is not None and after.group == name else 0
            records = await self._broker.dead_letters(name, limit - len(found), after=start)
            found += [_view(r) for r in records]
            if len(found) == limit:
                last = found[-1].record
                return found, Cursor(last.group, last.position)
        return found, None

    async def show(self, group: str, position: int) -> DeadLetterDetail:
        view = _view(await self._record(group, position))
        async with self._storage.read() as reads:
            attempts = await reads.attempts.of(group, [view.record.message_id])
            order = None if view.order_id is None else await reads.queries.get(view.order_id, None)
        return DeadLetterDetail(
            view,
            attempts.get(view.record.message_id, []),
            None if order is None else order["status"],
        )

    async def replay(self, group: str, position: int, *, actor: str) -> bool:
        """Deliver it to its group again, resuming its failed order first (see the module);
        True if an order was resumed."""
        view = _view(await self._record(group, position))
        with structlog.contextvars.bound_contextvars(order_id=view.order_id):
            resumed = False
            if view.message is not None and not isinstance(view.message, _COMPENSATION):
                resumed = await self._resume(view.message.order_id, group, position, actor)
            if not await self._broker.replay_dead_letter(group, position):
                raise DeadLetterNotFoundError(f"{group}/{position}")
            log.info("dead letter replayed", group=group, position=position, actor=actor)
        return resumed

    async def discard(self, group: str, position: int, *, actor: str) -> None:
        view = _view(await self._record(group, position))
        if not await self._broker.discard_dead_letter(group, position):
            raise DeadLetterNotFoundError(f"{group}/{position}")
        log.warning(
            "dead letter discarded",
            order_id=view.order_id,
            group=group,
            position=position,
            message_type=view.message_type,
            actor=actor,
        )

    async def _resume(self, order_id: str, group: str, position: int, actor: str) -> bool:
        async with self._storage.write() as tx:
            order = await tx.queries.get(order_id, None)
            if order is None or order["status"] != OrderStatus.FAILED:
                return False
            held = (await tx.inventory.reservations([order_id])).get(order_id)
            if held or await tx.payments.capture_of(order_id) is not None:
                raise OrderNotResumableError(
                    "it had reserved stock or captured its payment before it failed, and those "
                    "went back; the customer must order again (discard the dead letter)"
                )
            reason = f"dead letter {group}/{position} replayed"
            resume = m.ProcessingResumed(order_id, actor, reason)
            [produced] = await apply_events(tx.orders, [resume], actor=actor)
            await tx.outbox.add([encode(msg) for msg in produced or []])
        log.info("failed order resumed", group=group, position=position, actor=actor)
        return True

    async def _record(self, group: str, position: int) -> DeadLetterRecord:
        record = await self._broker.dead_letter(self._known(group), position)
        if record is None:
            raise DeadLetterNotFoundError(f"{group}/{position}")
        return record

    def _known(self, group: str) -> str:
        if group not in self.groups:
            raise DeadLetterNotFoundError(f"no consumer group {group!r}")
        return group


def _view(record: DeadLetterRecord) -> DeadLetterView:
    try:
        message: m.Message | None = decode(record.payload)
    except MalformedMessageError:
        message = None
    return DeadLetterView(record, message)
