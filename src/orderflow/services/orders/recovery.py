"""Dead letters as an admin handles them (the admin API and `orderflow dlq`): list, show, replay,
discard. A dead letter is named by its consumer group and its position there.

DeadLetterNotFoundError        no such group, or no such dead letter (any more: replayed or
                               discarded already, so repeating a command changes nothing)
BadCursorError                 a listing's cursor that is not for this listing
OrderNotResumableError         (domain) the dead letter would carry on a failed order whose
                               failure gave back stock it held or money it took

Replay delivers the message to its group again. Most dead letters failed their order (the
consumer reported it: `failed`, stock released, capture refunded), and a failed order ignores
what comes after, so a message that would move a failed order on first brings the order back
(ProcessingResumed: failed -> pending, on its timeline with the admin as actor):
- it never held stock (it failed at its first step): resumed, then the message is replayed and
  its success carries the order on to the end;
- its stock was reserved and went back: restarted, with a new reservation, and the dead letter
  is removed instead of replayed (delivered now, out of step, it could take money for an order
  that holds no stock); the order runs through every step again;
- its payment was captured (and refunded when it failed): refused, since the same payment (its
  idempotency keys are per order) is not taken twice; the customer must order again.
A compensation (a release, a refund) or a message whose order is live or finished is replayed as
it is: a refund that failed for a cancelled order, replayed once the provider is back, refunds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import structlog

from orderflow.domain import messages as m
from orderflow.domain.errors import OrderNotResumableError
from orderflow.domain.order import OrderStatus
from orderflow.messaging.envelope import MalformedMessageError, decode, encode
from orderflow.ports.attempts import FailedAttempt
from orderflow.ports.broker import Broker, DeadLetterRecord
from orderflow.ports.storage import Storage, Writes
from orderflow.services.orders.transitions import apply_events
from orderflow.services.runtime.dead_letters import REPORTED_BY, report_key

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


class BadCursorError(ValueError):
    """A cursor of another listing (another group's)."""


# replayed: delivered again as it is; resumed: its failed order back to pending, then delivered
# again; restarted: its failed order back to pending with a new reservation, the letter removed.
ReplayOutcome = Literal["replayed", "resumed", "restarted"]


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
            if after.group not in groups:
                raise BadCursorError(f"the cursor is for group {after.group!r}")
            groups = groups[groups.index(after.group) :]
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

    async def replay(self, group: str, position: int, *, actor: str) -> ReplayOutcome:
        """Deliver it to its group again, resuming or restarting its failed order first (see
        the module); says which it did."""
        view = _view(await self._record(group, position))
        with structlog.contextvars.bound_contextvars(order_id=view.order_id):
            plan = await self._plan(view)
            if plan == "restarted":
                # Superseded by the restart's own messages: taken out first, so that a restart
                # that fails after it leaves a failed order, never a letter to replay twice.
                if not await self._broker.discard_dead_letter(group, position):
                    raise DeadLetterNotFoundError(f"{group}/{position}")
                await self._resume(view, actor, restart=True)
            else:
                await self._resume(view, actor, restart=False, order=plan == "resumed")
                if not await self._broker.replay_dead_letter(group, position):
                    raise DeadLetterNotFoundError(f"{group}/{position}")
            log.info("dead letter replayed", group=group, position=position, outcome=plan)
        return plan

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

    async def _plan(self, view: DeadLetterView) -> ReplayOutcome:
        message = view.message
        if message is None or isinstance(message, _COMPENSATION):
            return "replayed"
        async with self._storage.read() as reads:
            order = await reads.queries.get(message.order_id, None)
            if order is None or order["status"] != OrderStatus.FAILED:
                return "replayed"
            if await reads.payments.capture_of(message.order_id) is not None:
                raise OrderNotResumableError(
                    "its payment was captured before it failed and refunded when it failed; "
                    "the customer must order again (discard the dead letter)"
                )
        async with self._storage.write() as tx:  # reservations are read on the write side
            held = (await tx.inventory.reservations([message.order_id])).get(message.order_id)
        return "restarted" if held else "resumed"

    async def _resume(
        self, view: DeadLetterView, actor: str, *, restart: bool, order: bool = True
    ) -> None:
        """failed -> pending in one transaction (if `order`), with a new reservation if
        `restart`. Either way the message's failure report is forgotten: should the replayed
        message be buried again, that is a new failure to report (by the consumer, or by the
        sweep if its lease runs out), and it must fail its order again."""
        record = view.record
        async with self._storage.write() as tx:
            await tx.processed(REPORTED_BY).forget([report_key(record.group, record.message_id)])
            if not order or view.message is None:
                return
            await self._resume_order(tx, view.message.order_id, record, actor, restart=restart)
        log.info("failed order resumed", restart=restart, actor=actor)

    async def _resume_order(
        self, tx: Writes, order_id: str, record: DeadLetterRecord, actor: str, *, restart: bool
    ) -> None:
        reason = f"dead letter {record.group}/{record.position} replayed"
        order = await tx.queries.get(order_id, None)
        if order is None:
            raise DeadLetterNotFoundError(f"order {order_id}")
        lines = tuple(m.Line(line["sku"], line["quantity"]) for line in order["lines"])
        resume = m.ProcessingResumed(order_id, actor, reason, lines if restart else ())
        [produced] = await apply_events(tx.orders, [resume], actor=actor)
        await tx.outbox.add([encode(msg) for msg in produced or []])

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
