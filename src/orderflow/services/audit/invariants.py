"""The invariants `orderflow audit` checks, each with a stable code, and the checks themselves.

Money is reconciled against the payment provider's own ledger, not only the application's: the
provider says what really moved, the application's ledger what the pipeline believes moved. So
a paid order lacks a capture only when neither shows one; a capture or refund the application
recorded but the provider never approved, or one the provider made that the application never
recorded, is a violation of its own; and twice means twice in either ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orderflow.domain.order import OrderStatus
from orderflow.ports.audit import AuditQueries, OrderTotal, ProviderLedger
from orderflow.ports.ledger import CAPTURE, REFUND

S = OrderStatus
# Money was taken and the goods are (or will be) delivered: exactly one capture, no refund owed.
KEEPS_MONEY = frozenset({S.PAID, S.CONFIRMED, S.SHIPPED, S.DELIVERED})
# The order ended without being fulfilled: whatever was captured is owed back.
OWES_MONEY_BACK = frozenset({S.REJECTED, S.PAYMENT_FAILED, S.CANCELLED, S.FAILED})

INVARIANTS: dict[str, str] = {
    "order-without-event": "order has no timeline entry for its current version",
    "status-differs-from-event": "order status differs from its last timeline entry",
    "timeline-gap": "order timeline has gaps",
    "terminal-twice": "order entered the same terminal status twice",
    "stock-does-not-add-up": "reserved stock differs from the reservations held",
    "settled-order-holds-stock": "settled order still holds stock",
    "paid-without-capture": "paid order without a capture",
    "captured-twice": "order captured more than once",
    "capture-amount-differs": "capture does not match the order total",
    "unfulfilled-without-refund": "order not fulfilled kept its capture (no refund)",
    "refunded-twice": "order refunded more than once",
    "ledger-not-at-provider": "recorded capture or refund the provider never approved",
    "provider-not-in-ledger": "provider moved money the application never recorded",
    "money-for-unknown-order": "money moved for an order that does not exist",
    "stuck-past-deadline": "order stuck in its status past the deadline",
}


@dataclass(frozen=True, slots=True, order=True)
class Violation:
    invariant: str  # a key of INVARIANTS
    subject: str  # an order id, or `sku@warehouse` for stock

    @property
    def description(self) -> str:
        return INVARIANTS[self.invariant]


async def run_audit(
    queries: AuditQueries,
    provider: ProviderLedger,
    deadlines: Mapping[OrderStatus, timedelta],
    now: datetime,
) -> list[Violation]:
    """Every violation found, sorted by invariant and subject; empty when all hold."""
    found: list[Violation] = []
    simple = {
        "order-without-event": queries.orders_without_their_event,
        "status-differs-from-event": queries.status_differs_from_event,
        "timeline-gap": queries.timeline_gaps,
        "terminal-twice": queries.terminal_status_twice,
        "stock-does-not-add-up": queries.stock_not_adding_up,
        "settled-order-holds-stock": queries.settled_orders_holding_stock,
    }
    for invariant, query in simple.items():
        found += [Violation(invariant, subject) for subject in await query()]
    found += await _money(queries, provider)
    cutoffs = {status: now - after for status, after in deadlines.items()}
    found += [
        Violation("stuck-past-deadline", oid) for oid in await queries.unchanged_since(cutoffs)
    ]
    return sorted(set(found))


@dataclass
class _Moves:
    """One order's captures and refunds: references with (amount, currency), per ledger."""

    ours: dict[str, dict[str, tuple[int | None, str | None]]] = field(
        default_factory=lambda: {CAPTURE: {}, REFUND: {}}
    )
    theirs: dict[str, dict[str, tuple[int | None, str | None]]] = field(
        default_factory=lambda: {CAPTURE: {}, REFUND: {}}
    )


async def _money(queries: AuditQueries, provider: ProviderLedger) -> list[Violation]:
    moves: defaultdict[str, _Moves] = defaultdict(_Moves)
    for entry in await queries.ledger():
        ours = moves[entry.order_id].ours[entry.kind]
        ours[entry.provider_reference] = (entry.amount, entry.currency)
    for movement in await provider.movements():
        theirs = moves[movement.order_id].theirs[movement.kind]
        theirs[movement.reference] = (movement.amount, movement.currency)
    found: list[Violation] = []
    orders = await queries.order_totals()
    for order in orders:
        found += [Violation(i, order.order_id) for i in _money_rules(order, moves[order.order_id])]
    unknown = set(moves) - {order.order_id for order in orders}
    found += [Violation("money-for-unknown-order", order_id) for order_id in unknown]
    return found


def _money_rules(order: OrderTotal, moves: _Moves) -> list[str]:
    ours, theirs = moves.ours, moves.theirs
    captured = bool(ours[CAPTURE] or theirs[CAPTURE])
    broken: list[str] = []
    if order.status in KEEPS_MONEY and not captured:
        broken.append("paid-without-capture")
    if len(ours[CAPTURE]) > 1 or len(theirs[CAPTURE]) > 1:
        broken.append("captured-twice")
    total = (order.amount, order.currency)
    if any(paid != total for paid in (*ours[CAPTURE].values(), *theirs[CAPTURE].values())):
        broken.append("capture-amount-differs")
    if order.status in OWES_MONEY_BACK and captured and not (ours[REFUND] or theirs[REFUND]):
        broken.append("unfulfilled-without-refund")
    if len(ours[REFUND]) > 1 or len(theirs[REFUND]) > 1:
        broken.append("refunded-twice")
    if any(ref not in theirs[kind] for kind in (CAPTURE, REFUND) for ref in ours[kind]):
        broken.append("ledger-not-at-provider")
    if any(theirs[kind] and not ours[kind] for kind in (CAPTURE, REFUND)):
        broken.append("provider-not-in-ledger")
    return broken
