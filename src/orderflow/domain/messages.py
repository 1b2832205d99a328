"""Commands (imperative) and events (past tense) that services exchange through the broker.

Each message names its topic; every message of one order is keyed by the order id, so engines that
order by key keep an order's messages in sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

INVENTORY_COMMANDS = "inventory.commands"
PAYMENT_COMMANDS = "payment.commands"
INVENTORY_EVENTS = "inventory.events"
PAYMENT_EVENTS = "payment.events"
PIPELINE_EVENTS = "pipeline.events"
ORDER_STATUS_CHANGED = "orders.status_changed"


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Message:
    topic: ClassVar[str]
    order_id: str


# --- commands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReserveStock(Message):
    topic: ClassVar[str] = INVENTORY_COMMANDS
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class CommitStock(Message):
    topic: ClassVar[str] = INVENTORY_COMMANDS


@dataclass(frozen=True, slots=True)
class ReleaseStock(Message):
    topic: ClassVar[str] = INVENTORY_COMMANDS


@dataclass(frozen=True, slots=True)
class CapturePayment(Message):
    topic: ClassVar[str] = PAYMENT_COMMANDS
    amount: int
    currency: str
    payment_token: str


@dataclass(frozen=True, slots=True)
class RefundPayment(Message):
    topic: ClassVar[str] = PAYMENT_COMMANDS


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StockReserved(Message):
    topic: ClassVar[str] = INVENTORY_EVENTS


@dataclass(frozen=True, slots=True)
class StockRejected(Message):
    topic: ClassVar[str] = INVENTORY_EVENTS
    reason: str


@dataclass(frozen=True, slots=True)
class StockCommitted(Message):
    topic: ClassVar[str] = INVENTORY_EVENTS


@dataclass(frozen=True, slots=True)
class StockReleased(Message):
    topic: ClassVar[str] = INVENTORY_EVENTS


@dataclass(frozen=True, slots=True)
class PaymentCaptured(Message):
    topic: ClassVar[str] = PAYMENT_EVENTS
    payment_id: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class PaymentDeclined(Message):
    topic: ClassVar[str] = PAYMENT_EVENTS
    reason: str


@dataclass(frozen=True, slots=True)
class PaymentRefunded(Message):
    topic: ClassVar[str] = PAYMENT_EVENTS
    payment_id: str


@dataclass(frozen=True, slots=True)
class RefundDeclined(Message):
    """The provider refused to give the money back (its reason says why): someone must look."""

    topic: ClassVar[str] = PAYMENT_EVENTS
    reason: str


@dataclass(frozen=True, slots=True)
class CancellationRequested(Message):
    """Not published: the API applies it to the order directly, like the saga applies the others."""

    topic: ClassVar[str] = PIPELINE_EVENTS
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProcessingFailed(Message):
    """A message about this order was dead-lettered after its retries ran out."""

    topic: ClassVar[str] = PIPELINE_EVENTS
    stage: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProcessingResumed(Message):
    """Not published: an admin replaying the dead letter of a failed order applies it directly.
    With `lines`, the order starts again from its first step (its stock was released)."""

    topic: ClassVar[str] = PIPELINE_EVENTS
    actor: str
    reason: str
    lines: tuple[Line, ...] = ()


@dataclass(frozen=True, slots=True)
class ReservationExpired(Message):
    """Not published: the expiry job found the order holding stock past the reservation TTL."""

    topic: ClassVar[str] = PIPELINE_EVENTS
    reason: str


@dataclass(frozen=True, slots=True)
class OrderStalled(Message):
    """Not published: the watchdog found the order unmoved in `stalled_in` past its deadline, so
    the step it waits on is sent again. `lines` are the order's (a ReserveStock needs them)."""

    topic: ClassVar[str] = PIPELINE_EVENTS
    stalled_in: str
    reason: str
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class OrderStatusChanged(Message):
    topic: ClassVar[str] = ORDER_STATUS_CHANGED
    status: str
    previous: str | None
    version: int
    reason: str | None


Command = ReserveStock | CommitStock | ReleaseStock | CapturePayment | RefundPayment
Event = (
    StockReserved
    | StockRejected
    | StockCommitted
    | StockReleased
    | PaymentCaptured
    | PaymentDeclined
    | PaymentRefunded
    | RefundDeclined
    | CancellationRequested
    | ProcessingFailed
    | ProcessingResumed
    | ReservationExpired
    | OrderStalled
)

MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in (
        ReserveStock,
        CommitStock,
        ReleaseStock,
        CapturePayment,
        RefundPayment,
        StockReserved,
        StockRejected,
        StockCommitted,
        StockReleased,
        PaymentCaptured,
        PaymentDeclined,
        PaymentRefunded,
        RefundDeclined,
        CancellationRequested,
        ProcessingFailed,
        ProcessingResumed,
        ReservationExpired,
        OrderStalled,
        OrderStatusChanged,
    )
}
