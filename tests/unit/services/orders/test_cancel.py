"""Cancelling through the order service's use case, on fakes: stock back, money back, once."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from orderflow.domain import messages as m
from orderflow.domain.errors import OrderNotCancellableError
from orderflow.domain.order import OrderState, OrderStatus
from orderflow.services.orders.cancel import OrderNotFoundError, cancel_order
from tests.unit.services.fakes import FakeOrderRepository
from tests.unit.services.pipeline import Pipeline, delivery

S = OrderStatus


async def reserved_order(pipeline: Pipeline) -> str:
    """An order whose stock is held and whose capture has not been asked for yet."""
    pipeline.storage.add_stock("MUG", east=5)
    oid = await pipeline.place(("MUG", 2))
    await pipeline.round()  # ReserveStock -> StockReserved
    await pipeline.round()  # StockReserved -> reserved, CapturePayment waits in the outbox
    pipeline.storage.state.outbox.clear()  # the capture never happens
    assert pipeline.storage.status(oid) is S.RESERVED
    return oid


async def test_cancelling_a_reserved_order_releases_its_stock() -> None:
    pipeline = Pipeline()
    oid = await reserved_order(pipeline)
    order = await cancel_order(
        pipeline.storage, oid, owner="customer-1", actor="customer:customer-1", reason="oops"
    )
    assert (order["status"], order["status_reason"]) == ("cancelled", "oops")
    await pipeline.drain()
    assert pipeline.sent(m.ReleaseStock, oid) == [m.ReleaseStock(oid)]
    assert pipeline.sent(m.RefundPayment, oid) == []  # no money was taken
    assert (pipeline.storage.free("MUG"), pipeline.storage.reserved("MUG")) == (5, 0)
    assert pipeline.storage.timeline(oid)[-2:] == [
        ("CancellationRequested", "cancelled", "oops"),
        ("StockReleased", "cancelled", None),
    ]


async def test_cancelling_a_confirmed_order_refunds_it_once_and_restocks() -> None:
    pipeline = Pipeline()
    pipeline.storage.add_stock("MUG", east=5)
    oid = await pipeline.place(("MUG", 2))
    await pipeline.drain()
    assert pipeline.storage.status(oid) is S.CONFIRMED
    await cancel_order(pipeline.storage, oid, owner=None, actor="admin:a", reason="fraud")
    # Cancelling again is no error and undoes nothing twice.
    await cancel_order(pipeline.storage, oid, owner=None, actor="admin:a", reason="fraud")
    await pipeline.drain()
    assert pipeline.storage.status(oid) is S.CANCELLED
    assert pipeline.sent(m.RefundPayment, oid) == [m.RefundPayment(oid)]
    assert pipeline.gateway.approved("refund") == [f"refund:{oid}"]
    kinds = sorted(e.kind for e in pipeline.storage.state.ledger.values())
    assert kinds == ["capture", "refund"]
    assert (pipeline.storage.on_hand("MUG"), pipeline.storage.reserved("MUG")) == (5, 0)


async def test_a_late_capture_after_a_cancellation_is_refunded() -> None:
    pipeline = Pipeline()
    oid = await reserved_order(pipeline)
    await cancel_order(pipeline.storage, oid, owner=None, actor="admin:a", reason="late")
    await pipeline.drain()
    # The capture that was in flight when the order was cancelled lands afterwards.
    captured = m.PaymentCaptured(oid, "capt_x", 2400, "USD")
    await pipeline.saga.process([delivery(captured)])
    await pipeline.saga.process([delivery(captured)])  # and again, under a new id
    await pipeline.drain()
    assert pipeline.sent(m.RefundPayment, oid) == [m.RefundPayment(oid)]


async def test_someone_elses_order_is_not_found() -> None:
    pipeline = Pipeline()
    oid = await reserved_order(pipeline)
    with pytest.raises(OrderNotFoundError):
        await cancel_order(pipeline.storage, oid, owner="intruder", actor="c:i", reason="x")
    with pytest.raises(OrderNotFoundError):
        await cancel_order(pipeline.storage, "missing", owner=None, actor="admin:a", reason="x")
    assert pipeline.storage.status(oid) is S.RESERVED


async def test_a_shipped_order_cannot_be_cancelled_and_nothing_is_written() -> None:
    pipeline = Pipeline()
    oid = await reserved_order(pipeline)
    stored = pipeline.storage.state.orders[oid]
    stored.state = dataclasses.replace(stored.state, status=S.SHIPPED)
    timeline = pipeline.storage.timeline(oid)
    with pytest.raises(OrderNotCancellableError):
        await cancel_order(pipeline.storage, oid, owner=None, actor="admin:a", reason="x")
    assert pipeline.storage.timeline(oid) == timeline
    assert pipeline.storage.state.outbox == []


async def test_a_cancel_that_loses_the_race_to_the_saga_runs_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The saga commits a step between the cancel's read and its write: the cancel's write is
    refused as stale (ConcurrentUpdateError), and the cancel runs again on the order as it is."""
    pipeline = Pipeline()
    oid = await reserved_order(pipeline)
    read = FakeOrderRepository.states_for_update
    raced = []

    async def saga_moves_in_between(
        self: FakeOrderRepository, order_ids: Sequence[str]
    ) -> dict[str, tuple[OrderState, int]]:
        states = await read(self, order_ids)
        if not raced:  # once: the saga records a fact about the order meanwhile
            raced.append(oid)
            pipeline.storage.state.orders[oid].version += 1
        return states

    monkeypatch.setattr(FakeOrderRepository, "states_for_update", saga_moves_in_between)
    order = await cancel_order(
        pipeline.storage, oid, owner=None, actor="admin:a", reason="changed my mind"
    )

    assert raced == [oid]
    assert order["status"] == "cancelled"
    assert pipeline.storage.status(oid) is S.CANCELLED
