"""The order state machine: one table of allowed transitions and one pure decision function.

`decide(order, event)` returns the next status (or None when the event changes nothing) and the
commands to send. Stale or duplicate events are answered with "no change". Cancelling an order, or
giving up on it (`failed`, after a message about it was dead-lettered), releases its stock and
refunds its payment, and events that arrive afterwards get the compensation they need (a late
reservation is released, a late capture refunded), so no path leaves stock held or money taken
for an order that will not be fulfilled. A failed order that took no money can be resumed by an
admin replaying its dead letter: it goes back to pending, and either the replayed message carries
it on (it never held stock) or it starts again with a new reservation (its stock was released).
Money that was refunded is not taken again: such an order cannot resume.
A reservation that expires unpaid cancels the order like a cancellation; a stalled order
(the watchdog's) has the command of the step it waits on sent again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from orderflow.domain import messages as m
from orderflow.domain.errors import (
    InvalidTransitionError,
    OrderNotCancellableError,
    OrderNotResumableError,
)


class OrderStatus(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    PAID = "paid"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    PAYMENT_FAILED = "payment_failed"
    CANCELLED = "cancelled"
    FAILED = "failed"


S = OrderStatus

ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.RESERVED, S.REJECTED, S.CANCELLED, S.FAILED}),
    S.RESERVED: frozenset({S.PAID, S.PAYMENT_FAILED, S.CANCELLED, S.FAILED}),
    S.PAID: frozenset({S.CONFIRMED, S.CANCELLED, S.FAILED}),
    S.CONFIRMED: frozenset({S.SHIPPED, S.CANCELLED, S.FAILED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.FAILED}),
    S.DELIVERED: frozenset(),
    S.REJECTED: frozenset(),
    S.PAYMENT_FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    # Only an admin's resume leaves it (see ProcessingResumed in decide).
    S.FAILED: frozenset({S.PENDING}),
}

# Where the pipeline is done with an order. A failed order waits for an admin, so it counts.
TERMINAL_STATUSES = frozenset(s for s, nxt in ALLOWED_TRANSITIONS.items() if not nxt) | {S.FAILED}

# Statuses in which the pipeline owes the order nothing more until shipping starts.
SETTLED_STATUSES = TERMINAL_STATUSES | {S.CONFIRMED}

# Statuses where stock is held (or taken) and money may have moved, per compensation needs.
_HOLDS_STOCK = frozenset({S.RESERVED, S.PAID, S.CONFIRMED})
_MONEY_TAKEN = frozenset({S.PAID, S.CONFIRMED})
# Orders the pipeline gave up on: what reaches them late is undone (a failed order is compensated
# like a cancelled one, so it never holds stock or money while it waits for someone to look).
_GIVEN_UP = frozenset({S.CANCELLED, S.FAILED})


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the state machine needs to know about an order."""

    order_id: str
    status: OrderStatus
    total_amount: int
    currency: str
    payment_token: str
    # What has already been undone (STOCK released, PAYMENT refunded), so a duplicate late event
    # is not compensated twice.
    compensated: frozenset[str] = frozenset()
    # When the order was accepted (for the stage latencies in the metrics; None if unknown).
    placed_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Decision:
    status: OrderStatus | None  # None: the event changes nothing
    commands: tuple[m.Command, ...] = field(default=())
    reason: str | None = None


NO_CHANGE = Decision(None)

STOCK, PAYMENT = "stock", "payment"


def evolve(order: OrderState, decision: Decision) -> OrderState:
    """The order after a decision: its new status and what its commands undo. A release or
    refund sent only in case (a failure from a status that did not know of a hold) undoes nothing
    known, so a late event about that hold still gets its own (idempotent) compensation."""
    held_stock = order.status in _HOLDS_STOCK | _GIVEN_UP
    took_money = order.status in _MONEY_TAKEN | _GIVEN_UP
    undone = {STOCK for c in decision.commands if isinstance(c, m.ReleaseStock) and held_stock} | {
        PAYMENT for c in decision.commands if isinstance(c, m.RefundPayment) and took_money
    }
    if order.status is S.FAILED and decision.status is S.PENDING:
        undone, compensated = set(), frozenset[str]()  # resumed: it starts over, nothing undone
    else:
        compensated = order.compensated
    return replace(
        order,
        status=decision.status or order.status,
        compensated=compensated | undone,
    )


def check_transition(current: OrderStatus, target: OrderStatus) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransitionError(f"{current} -> {target} is not allowed")


def _to(
    order: OrderState, target: OrderStatus, *commands: m.Command, reason: str | None = None
) -> Decision:
    check_transition(order.status, target)
    return Decision(target, commands, reason)


# The status every order starts in: the one place this is decided.
NEW_ORDER_STATUS = S.PENDING


def place(order_id: str, lines: tuple[m.Line, ...]) -> tuple[OrderStatus, tuple[m.Command, ...]]:
    """A new order starts pending and asks inventory to reserve every line."""
    return NEW_ORDER_STATUS, (m.ReserveStock(order_id, lines),)


def decide(order: OrderState, event: m.Event) -> Decision:
    status, oid = order.status, order.order_id
    match event:
        case m.StockReserved():
            if status is S.PENDING:
                capture = m.CapturePayment(
                    oid, order.total_amount, order.currency, order.payment_token
                )
                return _to(order, S.RESERVED, capture)
            if status in _GIVEN_UP and STOCK not in order.compensated:
                return Decision(None, (m.ReleaseStock(oid),))
        case m.StockRejected(reason=reason):
            if status is S.PENDING:
                return _to(order, S.REJECTED, reason=reason)
        case m.PaymentCaptured():
            if status is S.RESERVED:
                return _to(order, S.PAID, m.CommitStock(oid))
            if status in _GIVEN_UP and PAYMENT not in order.compensated:
                return Decision(None, (m.RefundPayment(oid),))
        case m.PaymentDeclined(reason=reason):
            if status is S.RESERVED:
                return _to(order, S.PAYMENT_FAILED, m.ReleaseStock(oid), reason=reason)
        case m.StockCommitted():
            if status is S.PAID:
                return _to(order, S.CONFIRMED)
        case m.CancellationRequested(reason=reason):
            return _cancel(order, reason)
        case m.ProcessingFailed(stage=stage, reason=reason):
            if status not in TERMINAL_STATUSES:
                compensation = _failure_compensation(order)
                return _to(order, S.FAILED, *compensation, reason=f"{stage}: {reason}")
        case m.ProcessingResumed(reason=reason, lines=lines):
            return _resume(order, reason, lines)
        case m.ReservationExpired(reason=reason):
            # Only stock still waiting for its payment expires: once paid, the order goes on.
            if status is S.RESERVED:
                return _to(order, S.CANCELLED, *_compensation(order), reason=reason)
        case m.OrderStalled(stalled_in=stalled_in, reason=reason, lines=lines):
            if status.value == stalled_in:  # it moved meanwhile: nothing is stuck
                return Decision(None, redrive(order, lines), reason)
        case m.StockReleased() | m.PaymentRefunded() | m.RefundDeclined():
            pass  # outcomes of compensation: recorded on the timeline, no status change
    return NO_CHANGE


def redrive(order: OrderState, lines: tuple[m.Line, ...]) -> tuple[m.Command, ...]:
    """The command of the step the order waits on, to send again. Every handler is idempotent
    (a reservation already held answers StockReserved again, a capture reuses its provider
    idempotency key, a commit of committed stock changes nothing), so a step that did happen and
    only its answer is late costs a duplicate answer, which the state machine ignores."""
    oid = order.order_id
    match order.status:
        case S.PENDING:
            return (m.ReserveStock(oid, lines),)
        case S.RESERVED:
            return (m.CapturePayment(oid, order.total_amount, order.currency, order.payment_token),)
        case S.PAID:
            return (m.CommitStock(oid),)
    return ()


def _cancel(order: OrderState, reason: str) -> Decision:
    if order.status is S.CANCELLED:
        return NO_CHANGE
    if S.CANCELLED not in ALLOWED_TRANSITIONS[order.status]:
        raise OrderNotCancellableError(f"an order in status {order.status} cannot be cancelled")
    return _to(order, S.CANCELLED, *_compensation(order), reason=reason)


def _resume(order: OrderState, reason: str, lines: tuple[m.Line, ...]) -> Decision:
    """Back to pending, reserving again if `lines` are given (its stock went back when it
    failed); never for an order whose money went back: the same payment is not taken twice."""
    if order.status is not S.FAILED:
        raise OrderNotResumableError(f"an order in status {order.status} is not waiting to resume")
    if PAYMENT in order.compensated:
        raise OrderNotResumableError("its payment was refunded when it failed")
    if STOCK in order.compensated and not lines:
        raise OrderNotResumableError("its stock went back when it failed; it must reserve again")
    commands = (m.ReserveStock(order.order_id, lines),) if lines else ()
    return _to(order, S.PENDING, *commands, reason=reason)


def _compensation(order: OrderState) -> tuple[m.Command, ...]:
    """What undoes the order's progress so far: its stock back, its money back."""
    commands: list[m.Command] = []
    if order.status in _HOLDS_STOCK:
        commands.append(m.ReleaseStock(order.order_id))
    if order.status in _MONEY_TAKEN:
        commands.append(m.RefundPayment(order.order_id))
    return tuple(commands)


def _failure_compensation(order: OrderState) -> tuple[m.Command, ...]:
    """Like a cancellation's, but the message that failed may be the very event that would have
    told the saga what is held (a StockReserved, a PaymentCaptured), so everything that may be
    held is undone: stock from the start, money once a capture was asked for. Releasing or
    refunding what was never taken does nothing. Shipped goods stay where they are."""
    if order.status is S.SHIPPED:
        return ()
    if order.status is S.PENDING:
        return (m.ReleaseStock(order.order_id),)
    return (m.ReleaseStock(order.order_id), m.RefundPayment(order.order_id))
