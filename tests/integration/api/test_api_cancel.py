"""Cancelling orders against the whole system (`orderflow run`): compensation really happens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orderflow.demo.catalog import PLENTY, SCARCE
from orderflow.domain.identity import Identity
from tests.integration.api.harness import Api, assert_problem, whole_system
from tests.support.orders import stock_levels
from tests.support.system import customer

SETTLED = {"confirmed", "rejected", "payment_failed", "cancelled", "failed"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with whole_system(tmp_path_factory.mktemp("run") / "data") as system:
        client = Api(system)
        yield client
        client.close()


def types(order: dict[str, Any]) -> list[str]:
    return [entry["type"] for entry in order["timeline"]]


def compensated(order: dict[str, Any]) -> bool:
    """Cancelled, and every reservation released and every capture refunded."""
    seen = types(order)
    reserved = "StockReserved" in seen
    captured = "PaymentCaptured" in seen
    return (
        order["status"] == "cancelled"
        and (not reserved or "StockReleased" in seen)
        and (not captured or "PaymentRefunded" in seen)
    )


def place(api: Api, who: Identity, items: list[tuple[str, int]], token: str = "tok_visa") -> str:
    response = api.place(who, items, token)
    assert response.status_code == 202, response.text
    oid: str = response.json()["id"]
    return oid


def test_cancelling_a_confirmed_order_releases_stock_and_refunds(api: Api) -> None:
    who = customer()
    oid = place(api, who, [("HOODIE-GRY", 3)])
    api.wait_for(oid, who, lambda o: o["status"] == "confirmed")
    response = api.cancel(oid, who)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled"
    order = api.wait_for(oid, who, compensated)
    seen = types(order)
    assert {"StockReleased", "PaymentRefunded"} <= set(seen)
    cancel = seen.index("CancellationRequested")
    assert cancel < seen.index("StockReleased")
    assert cancel < seen.index("PaymentRefunded")
    assert order["timeline"][cancel]["actor"] == f"customer:{who.subject}"
    assert order["timeline"][cancel]["previous_status"] == "confirmed"


def test_cancelling_a_fresh_order_compensates_whatever_already_happened(api: Api) -> None:
    # Cancelled at once: the order may still be pending, or already reserved or paid. Whatever the
    # workers did before or after the cancellation is undone.
    who = customer()
    oid = place(api, who, [("BOTTLE-STL", 2)])
    response = api.cancel(oid, who)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled"
    order = api.wait_for(oid, who, lambda o: compensated(o) and "StockReleased" in types(o))
    assert order["status"] == "cancelled"


def test_cancelling_a_cancelled_order_changes_nothing(api: Api) -> None:
    who = customer()
    oid = place(api, who, [("NOTEBOOK-A5", 1)])
    api.wait_for(oid, who, lambda o: o["status"] == "confirmed")
    assert api.cancel(oid, who).status_code == 202
    before = api.wait_for(oid, who, lambda o: compensated(o) and "PaymentRefunded" in types(o))
    again = api.cancel(oid, who)
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "cancelled"
    assert api.order(oid, who)["timeline"] == before["timeline"]


@pytest.mark.parametrize(
    ("items", "token", "final", "last_event"),
    [
        pytest.param([("LIMITED-TEE", 26)], "tok_visa", "rejected", "StockRejected", id="rejected"),
        # A declined order's stock is released after it entered payment_failed.
        pytest.param(
            [("CAP-RED", 1)], "tok_decline", "payment_failed", "StockReleased", id="payment-failed"
        ),
    ],
)
def test_cancelling_a_finished_order_is_409(
    api: Api, items: list[tuple[str, int]], token: str, final: str, last_event: str
) -> None:
    who = customer()
    oid = place(api, who, items, token)
    before = api.wait_for(oid, who, lambda o: o["status"] == final and last_event in types(o))
    problem = assert_problem(api.cancel(oid, who), 409)
    assert final in problem["detail"]
    assert api.order(oid, who)["timeline"] == before["timeline"]


def test_admin_can_cancel_a_customers_order(api: Api) -> None:
    who = customer()
    oid = place(api, who, [("STICKER-PK", 4)])
    api.wait_for(oid, who, lambda o: o["status"] in SETTLED)
    boss = Identity("ops-1", frozenset({"admin"}))
    assert api.cancel(oid, boss).status_code == 202
    order = api.wait_for(oid, who, compensated)
    assert order["timeline"][types(order).index("CancellationRequested")]["actor"] == "admin:ops-1"


def test_stock_is_whole_again_after_every_cancellation(api: Api) -> None:
    # Runs last in this module: every order above ended cancelled, rejected or payment_failed.
    for sku, (on_hand, reserved) in stock_levels(api.system.data_dir / "orderflow.db").items():
        assert reserved == 0, sku
        assert on_hand == (sum(SCARCE[sku].values()) if sku in SCARCE else 2 * PLENTY), sku
