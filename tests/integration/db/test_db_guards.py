"""Reservation expiry and the stuck-order watchdog on SQLite and PostgreSQL, through the real
repositories and the real inventory handler and saga (issue 11).

Time is the jobs' injected clock set ahead, never a sleep: "now + TTL" is when a reservation made
before the test's `t0` is due, while anything written afterwards (a re-drive) is newer than the
cutoff, as it would be with the real clock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import migrate
from orderflow.adapters.db.storage import SqlStorage
from orderflow.adapters.db.tables import order_events
from orderflow.demo.catalog import seed_demo_catalog
from orderflow.domain import messages as m
from orderflow.domain.money import Money
from orderflow.domain.order import OrderStatus
from orderflow.domain.pricing import CatalogEntry, price_order
from orderflow.domain.watchdog import StallPolicy
from orderflow.messaging.envelope import decode, encode
from orderflow.ports.orders import NewOrder
from orderflow.ports.storage import Storage
from orderflow.services.inventory.handler import InventoryHandler
from orderflow.services.orders.expiry import ReservationExpiry
from orderflow.services.orders.intake import OrderIntake
from orderflow.services.orders.saga import OrderSaga
from orderflow.services.orders.transitions import apply_events
from orderflow.services.orders.watchdog import OrderWatchdog
from orderflow.services.runtime.handler import Handler

S = OrderStatus
TTL = 900.0
DEADLINE = 60.0
SKU = "MUG-WHT"
LINES = (m.Line(SKU, 2),)
CATALOG = {SKU: CatalogEntry(SKU, "Mug", Money(1200, "USD"))}


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    db = Database(database_url)
    await migrate(db)
    assert await seed_demo_catalog(db)
    yield SqlStorage(db)
    await db.dispose()


async def place(storage: Storage, n: int) -> list[str]:
    """`n` orders through the real intake, their first messages taken out of the outbox (the
    test hands each message on itself)."""
    intake = OrderIntake(storage)
    intake.start()
    try:
        accepted = await asyncio.gather(*(intake.submit(new_order(), None) for _ in range(n)))
    finally:
        await intake.stop()
    await drain(storage)
    return [a.order_id for a in accepted]


def new_order() -> NewOrder:
    priced = price_order([(SKU, 2)], CATALOG)
    return NewOrder(str(uuid.uuid4()), str(uuid.uuid4()), priced, "tok_visa", {}, None, None)


async def drain(storage: Storage) -> list[m.Message]:
    """Take every message out of the outbox, as the relay would; the commands and events, without
    the status announcements (the stream's)."""
    async with storage.write() as tx:
        rows = await tx.outbox.oldest(10_000)
        await tx.outbox.remove([r.id for r in rows])
    messages = [decode(r.message.payload) for r in rows]
    return [msg for msg in messages if not isinstance(msg, m.OrderStatusChanged)]


async def deliver(storage: Storage, handler: Handler[None], messages: Sequence[m.Message]) -> None:
    """Apply messages as the handler's consumer would: one transaction, results to the outbox."""
    async with storage.write() as tx:
        results = await handler.apply(tx, [(msg, None) for msg in messages])
        out = [r for result in results if not isinstance(result, Exception) for r in result]
        assert not [r for r in results if isinstance(r, Exception)], results
        await tx.outbox.add([encode(msg) for msg in out])


async def reserve(storage: Storage, order_ids: list[str]) -> None:
    """Inventory reserves the orders' stock and the saga takes them to `reserved`."""
    await deliver(storage, InventoryHandler(), [m.ReserveStock(oid, LINES) for oid in order_ids])
    reserved = await drain(storage)
    await deliver(storage, OrderSaga(), reserved)
    await drain(storage)


def captured(oid: str) -> m.PaymentCaptured:
    return m.PaymentCaptured(oid, f"pay-{oid}", 2400, "USD")


async def status_of(storage: Storage, oid: str) -> tuple[str, list[dict[str, object]]]:
    async with storage.read() as reads:
        order = await reads.queries.get(oid, None)
    assert order is not None
    return order["status"], order["timeline"]


def commands_for(messages: list[m.Message], oid: str) -> list[type[m.Message]]:
    return [type(msg) for msg in messages if msg.order_id == oid]


def expiry_at(storage: Storage, now: datetime) -> ReservationExpiry:
    return ReservationExpiry(storage, TTL, clock=lambda: now + timedelta(seconds=TTL))


async def test_an_unpaid_reservation_expires_and_its_stock_goes_back(storage: Storage) -> None:
    due, paid = await place(storage, 2)
    await reserve(storage, [due, paid])
    await deliver(storage, OrderSaga(), [captured(paid)])
    await drain(storage)
    t0 = datetime.now(UTC)
    fresh = (await place(storage, 1))[0]
    await reserve(storage, [fresh])  # reserved after t0: not due yet
    held = (await stock_levels_of(storage))[1]

    assert await expiry_at(storage, t0).sweep() == 1

    status, timeline = await status_of(storage, due)
    assert status == "cancelled"
    last = timeline[-1]
    assert (last["type"], last["actor"]) == ("ReservationExpired", "expiry")
    assert last["reason"] == "reservation expired: not paid within 900s"
    sent = await drain(storage)
    assert commands_for(sent, due) == [m.ReleaseStock]
    await deliver(storage, InventoryHandler(), [msg for msg in sent if msg.order_id == due])
    assert (await stock_levels_of(storage))[1] == held - 2
    assert (await status_of(storage, paid))[0] == "paid"
    assert (await status_of(storage, fresh))[0] == "reserved"
    assert await expiry_at(storage, t0).sweep() == 0  # nothing is expired twice


async def stock_levels_of(storage: Storage) -> tuple[int, int]:
    """(on_hand, reserved) of the sku over every warehouse."""
    async with storage.write() as tx:
        levels = (await tx.inventory.levels([SKU]))[SKU]
    return sum(w.on_hand for w in levels), sum(w.reserved for w in levels)


@pytest.mark.parametrize("first", ["expiry", "payment"])
async def test_a_late_payment_and_the_expiry_end_paid_or_expired_and_refunded(
    storage: Storage, first: str
) -> None:
    [oid] = await place(storage, 1)
    await reserve(storage, [oid])
    t0 = datetime.now(UTC)
    if first == "expiry":
        assert await expiry_at(storage, t0).sweep() == 1
        await deliver(storage, OrderSaga(), [captured(oid)])
    else:
        await deliver(storage, OrderSaga(), [captured(oid)])
        assert await expiry_at(storage, t0).sweep() == 0
    status, _ = await status_of(storage, oid)
    sent = commands_for(await drain(storage), oid)
    if first == "expiry":
        assert (status, sorted(c.__name__ for c in sent)) == (
            "cancelled",
            ["RefundPayment", "ReleaseStock"],
        )
    else:
        assert (status, sent) == ("paid", [m.CommitStock])


async def test_expiry_racing_payments_never_leaves_a_paid_order_without_its_stock(
    storage: Storage,
) -> None:
    """Expiry and the saga's capture of the same orders in concurrent transactions: each order
    ends paid (its stock to be committed, never released) or cancelled with its stock released
    and its capture refunded."""
    orders = await place(storage, 24)
    await reserve(storage, orders)
    t0 = datetime.now(UTC)
    expiry = ReservationExpiry(storage, TTL, batch=5, clock=lambda: t0 + timedelta(seconds=TTL))

    async def pay(chunk: list[str]) -> None:
        await deliver(storage, OrderSaga(), [captured(oid) for oid in chunk])

    await asyncio.gather(
        expiry.sweep(), *(pay(orders[i : i + 4]) for i in range(0, len(orders), 4))
    )
    sent = await drain(storage)
    for oid in orders:
        status, _ = await status_of(storage, oid)
        commands = tuple(sorted(c.__name__ for c in commands_for(sent, oid)))
        assert (status, commands) in {
            ("paid", ("CommitStock",)),
            ("cancelled", ("RefundPayment", "ReleaseStock")),
        }, (oid, status, commands)


def watchdog_at(storage: Storage, now: datetime, after: float = DEADLINE) -> OrderWatchdog:
    policy = StallPolicy({S.PENDING: DEADLINE, S.RESERVED: DEADLINE, S.PAID: DEADLINE}, 2)
    return OrderWatchdog(storage, policy, clock=lambda: now + timedelta(seconds=after))


async def test_a_stuck_order_has_its_step_sent_again_and_moves_on(storage: Storage) -> None:
    """Its ReserveStock was lost (`place` took it out of the outbox and nobody delivered it)."""
    [oid] = await place(storage, 1)
    t0 = datetime.now(UTC)

    assert await watchdog_at(storage, t0).sweep() == 1
    status, timeline = await status_of(storage, oid)
    assert status == "pending"
    assert (timeline[-1]["type"], timeline[-1]["actor"]) == ("OrderStalled", "watchdog")
    assert timeline[-1]["reason"] == "no progress in pending for 60s; its step was sent again"
    sent = await drain(storage)
    assert sent == [m.ReserveStock(oid, LINES)]
    # The re-drive is movement: the same sweep again finds nothing.
    assert await watchdog_at(storage, t0).sweep() == 0

    await deliver(storage, InventoryHandler(), sent)
    await deliver(storage, OrderSaga(), await drain(storage))
    assert (await status_of(storage, oid))[0] == "reserved"


@pytest.mark.parametrize(
    ("stuck_in", "step"), [("reserved", m.CapturePayment), ("paid", m.CommitStock)]
)
async def test_later_steps_are_sent_again_too(
    storage: Storage, stuck_in: str, step: type[m.Command]
) -> None:
    [oid] = await place(storage, 1)
    await reserve(storage, [oid])
    if stuck_in == "paid":
        await deliver(storage, OrderSaga(), [captured(oid)])
        await drain(storage)
    t0 = datetime.now(UTC)
    assert await watchdog_at(storage, t0).sweep() == 1
    assert commands_for(await drain(storage), oid) == [step]
    assert (await status_of(storage, oid))[0] == stuck_in


async def test_an_order_stuck_past_its_redrives_fails_with_the_reason_and_is_undone(
    storage: Storage,
) -> None:
    [oid] = await place(storage, 1)
    await reserve(storage, [oid])
    await deliver(storage, OrderSaga(), [captured(oid)])
    await drain(storage)
    t0 = datetime.now(UTC)
    # Three deadlines in `paid` (two re-drives allowed): given up on.
    assert await watchdog_at(storage, t0, after=3 * DEADLINE).sweep() == 1
    status, timeline = await status_of(storage, oid)
    assert status == "failed"
    assert timeline[-1]["reason"] == (
        "watchdog: no progress in paid for 180s after 2 re-drives; given up"
    )
    assert sorted(c.__name__ for c in commands_for(await drain(storage), oid)) == [
        "RefundPayment",
        "ReleaseStock",
    ]


async def test_two_watchdogs_at_once_act_on_each_stuck_order_once(storage: Storage) -> None:
    orders = await place(storage, 30)
    t0 = datetime.now(UTC)
    sweeps = [
        OrderWatchdog(
            storage,
            StallPolicy({S.PENDING: DEADLINE}, 2),
            batch=7,
            clock=lambda: t0 + timedelta(seconds=DEADLINE),
        ).sweep()
        for _ in range(2)
    ]
    acted = await asyncio.gather(*sweeps)
    assert sum(acted) == len(orders)
    sent = await drain(storage)
    assert sorted(msg.order_id for msg in sent) == sorted(orders)
    for oid in orders:
        _, timeline = await status_of(storage, oid)
        assert [e["type"] for e in timeline].count("OrderStalled") == 1


# An admin's resume (dead-letter replay) sends a failed order back to `pending`, so a status can
# be entered twice: the guards measure the stint the order is in, not its first.


async def backdate(storage: Storage, oid: str, status: str) -> None:
    """Make the order's earlier entries into `status` an hour old."""
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    async with storage.write() as tx:
        await tx.conn.execute(  # type: ignore[attr-defined]
            update(order_events)
            .where(order_events.c.order_id == oid, order_events.c.status == status)
            .values(at=hour_ago)
        )


async def fail_and_resume(storage: Storage, oid: str) -> None:
    async with storage.write() as tx:
        failed = m.ProcessingFailed(oid, "payment", "retries exhausted")
        await apply_events(tx.orders, [failed], actor="orders")
        resumed = m.ProcessingResumed(oid, "admin:1", "replayed", LINES)
        await apply_events(tx.orders, [resumed], actor="admin:1")
    await drain(storage)


async def test_a_resumed_order_is_judged_by_its_new_stint_in_pending(storage: Storage) -> None:
    [oid] = await place(storage, 1)
    await backdate(storage, oid, "pending")
    await fail_and_resume(storage, oid)
    t0 = datetime.now(UTC)
    # A deadline after the resume: its first stint (an hour ago) would have given it up.
    assert await watchdog_at(storage, t0).sweep() == 1
    status, timeline = await status_of(storage, oid)
    assert (status, timeline[-1]["type"]) == ("pending", "OrderStalled")


async def test_a_resumed_order_reserved_again_gets_a_fresh_ttl(storage: Storage) -> None:
    [oid] = await place(storage, 1)
    await reserve(storage, [oid])
    await backdate(storage, oid, "reserved")
    await fail_and_resume(storage, oid)
    await deliver(storage, InventoryHandler(), [m.ReserveStock(oid, LINES)])
    await deliver(storage, OrderSaga(), await drain(storage))
    await drain(storage)
    assert (await status_of(storage, oid))[0] == "reserved"
    # Its first reservation is an hour old, past the TTL; the one it holds now is not.
    assert await ReservationExpiry(storage, TTL).sweep() == 0
    assert (await status_of(storage, oid))[0] == "reserved"
