"""The order pipeline on fakes: the saga with the real inventory and payment handlers, each run by
the real ConsumerRunner. Stock held is given back on every path that does not ship, money is taken
and given back once, and replayed messages change nothing."""

from __future__ import annotations

from orderflow.domain import messages as m
from orderflow.domain.order import NEW_ORDER_STATUS, OrderStatus
from orderflow.ports.broker import Ack, DeadLetter
from orderflow.services.orders.cancel import cancel_order
from orderflow.services.orders.saga import OrderSaga
from orderflow.services.runtime.handler import PermanentError
from tests.unit.services.fakes import FakePaymentGateway, FakeStorage
from tests.unit.services.pipeline import Pipeline, delivery

S = OrderStatus


async def test_a_placed_order_starts_in_the_one_new_order_status_and_asks_for_its_stock() -> None:
    pipeline = Pipeline()
    oid = await pipeline.place(("MUG", 2))
    assert pipeline.storage.status(oid) is NEW_ORDER_STATUS
    await pipeline.round()
    assert pipeline.published == [
        m.ReserveStock(oid, (m.Line("MUG", 2),)),
        m.OrderStatusChanged(oid, NEW_ORDER_STATUS.value, None, 1, None),
    ]


async def test_happy_path_confirms_with_one_capture_and_the_goods_gone() -> None:
    pipeline = Pipeline()
    pipeline.storage.add_stock("MUG", east=5)
    oid = await pipeline.place(("MUG", 2))
    await pipeline.drain()
    assert pipeline.storage.status(oid) is S.CONFIRMED
    assert [t for t, _, _ in pipeline.storage.timeline(oid)] == [
        "OrderPlaced",
        "StockReserved",
        "PaymentCaptured",
        "StockCommitted",
    ]
    assert (pipeline.storage.on_hand("MUG"), pipeline.storage.reserved("MUG")) == (3, 0)
    [capture] = pipeline.storage.state.ledger.values()
    assert (capture.kind, capture.amount, capture.order_id) == ("capture", 2400, oid)
    assert pipeline.gateway.approved("capture") == [f"capture:{oid}"]


async def test_out_of_stock_rejects_with_the_reason_and_holds_nothing() -> None:
    pipeline = Pipeline()
    pipeline.storage.add_stock("MUG", east=5)
    pipeline.storage.add_stock("TEE", east=1)
    oid = await pipeline.place(("MUG", 2), ("TEE", 2))
    await pipeline.drain()
    assert pipeline.storage.status(oid) is S.REJECTED
    assert pipeline.storage.timeline(oid)[-1] == ("StockRejected", "rejected", "out of stock: TEE")
    assert (pipeline.storage.reserved("MUG"), pipeline.storage.reserved("TEE")) == (0, 0)
    assert pipeline.gateway.calls == []  # nobody was asked for money


async def test_a_declined_payment_releases_the_stock() -> None:
    pipeline = Pipeline()
    pipeline.storage.add_stock("MUG", east=5)
    oid = await pipeline.place(("MUG", 2), token="tok_decline")
    await pipeline.drain()
    assert pipeline.storage.status(oid) is S.PAYMENT_FAILED
    assert pipeline.sent(m.ReleaseStock, oid) == [m.ReleaseStock(oid)]
    assert (pipeline.storage.free("MUG"), pipeline.storage.reserved("MUG")) == (5, 0)
    assert [t for t, _, _ in pipeline.storage.timeline(oid)][-2:] == [
        "PaymentDeclined",
        "StockReleased",
    ]
    assert pipeline.storage.state.ledger == {}


async def test_a_replayed_event_changes_nothing() -> None:
    """The same StockReserved delivered again (a new message id, so past the runner's check):
    the saga sees the order moved on and neither asks for a second capture nor records it."""
    pipeline = Pipeline()
    pipeline.storage.add_stock("MUG", east=5)
    oid = await pipeline.place(("MUG", 1))
    await pipeline.drain()
    timeline = pipeline.storage.timeline(oid)
    async with pipeline.storage.write() as tx:
        results = await OrderSaga().apply(tx, [(m.StockReserved(oid), None)] * 2)
    assert results == [[], []]
    assert pipeline.storage.timeline(oid) == timeline
    assert pipeline.storage.state.outbox == []


async def test_a_redelivered_message_is_acknowledged_and_not_applied_again() -> None:
    """The runner's check: a message id the saga applied before is only acknowledged, however
    the order stands now."""
    pipeline = Pipeline()
    storage = pipeline.storage
    storage.add_stock("MUG", east=5)
    oid = await pipeline.place(("MUG", 1))
    await pipeline.round()  # inventory reserved: its StockReserved waits in the outbox
    [reserved] = [r.message for r in storage.state.outbox if r.message.topic == m.INVENTORY_EVENTS]
    first = await pipeline.saga.process([delivery(reserved)])
    after_first = (storage.state.orders[oid].state, list(storage.state.outbox))
    again = await pipeline.saga.process([delivery(reserved, attempt=2)])
    assert [o for _, o in first] == [o for _, o in again] == [Ack()]
    assert (storage.state.orders[oid].state, storage.state.outbox) == after_first
    assert len([r for r in storage.state.outbox if r.message.topic == m.PAYMENT_COMMANDS]) == 1


async def test_an_event_about_an_unknown_order_is_dead_lettered() -> None:
    async with FakeStorage().write() as tx:
        [result] = await OrderSaga().apply(tx, [(m.StockReserved("nobody"), None)])
    assert isinstance(result, PermanentError)
    assert str(result) == "unknown order nobody"


async def test_a_command_is_not_the_sagas_to_handle() -> None:
    pipeline = Pipeline()
    oid = await pipeline.place(("MUG", 1))
    [(_, outcome)] = await pipeline.saga.process([delivery(m.CommitStock(oid))])
    assert isinstance(outcome, DeadLetter)
    assert "the saga does not handle CommitStock" in outcome.reason


async def test_a_refund_the_provider_declines_is_recorded_on_the_timeline() -> None:
    pipeline = Pipeline(FakePaymentGateway(refunds_declined=True))
    pipeline.storage.add_stock("MUG", east=5)
    oid = await pipeline.place(("MUG", 1))
    await pipeline.drain()
    await cancel_order(pipeline.storage, oid, owner=None, actor="admin:a", reason="changed mind")
    await pipeline.drain()
    assert pipeline.storage.status(oid) is S.CANCELLED
    assert pipeline.storage.timeline(oid)[-1] == (
        "RefundDeclined",
        "cancelled",
        "refund_window_closed",
    )
    assert all(isinstance(o, Ack) for _, o in pipeline.outcomes)  # nothing dead-lettered
