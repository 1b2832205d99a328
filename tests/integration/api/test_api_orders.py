"""Placing, reading and listing orders: idempotency keys, ownership, cursor pagination, filters.

The server runs alone (no relay, no workers), so every order stays `pending` unless cancelled.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx

from orderflow.adapters.identity.assertions import HEADER
from tests.integration.api.harness import ORDERS, Api, assert_problem, row_counts
from tests.support.system import admin, customer, order_body


def test_placed_order_is_priced_from_the_catalog(api: Api) -> None:
    who = customer()
    response = api.place(who, [("MUG-WHT", 2), ("CAP-RED", 1)])
    assert response.status_code == 202, response.text
    order = response.json()
    assert response.headers["location"] == f"{ORDERS}/{order['id']}"
    assert "idempotent-replayed" not in response.headers
    assert order["status"] == "pending"
    assert order["customer_id"] == who.subject
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [
        ("MUG-WHT", 2),
        ("CAP-RED", 1),
    ]
    assert order["total"] == {"amount": 2 * 1200 + 1800, "currency": "USD"}
    stored = api.order(order["id"], who)
    assert [e["type"] for e in stored["timeline"]] == ["OrderPlaced"]
    assert {k: stored[k] for k in ("id", "status", "lines", "total")} == {
        k: order[k] for k in ("id", "status", "lines", "total")
    }


# --- Idempotency-Key --------------------------------------------------------------------------


def test_same_key_and_body_replays_the_same_order(api: Api) -> None:
    who = customer()
    first = api.place(who, [("TSHIRT-BLK", 1)], key="order-1")
    before = row_counts(api.system.data_dir)
    again = api.place(who, [("TSHIRT-BLK", 1)], key="order-1")
    assert first.status_code == again.status_code == 202, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    for field in ("status", "lines", "total", "shipping_address", "customer_id"):
        assert again.json()[field] == first.json()[field], field
    assert row_counts(api.system.data_dir) == before
    assert api.listed_ids(who) == [first.json()["id"]]


def test_same_key_with_another_body_is_422(api: Api) -> None:
    who = customer()
    first = api.place(who, [("TSHIRT-BLK", 1)], key="order-1")
    assert first.status_code == 202
    before = row_counts(api.system.data_dir)
    for items, token in ([("TSHIRT-BLK", 2)], "tok_visa"), ([("TSHIRT-BLK", 1)], "tok_decline"):
        problem = assert_problem(api.place(who, items, token, key="order-1"), 422)
        assert problem["title"] == "Idempotency key reused"
    assert row_counts(api.system.data_dir) == before
    assert api.listed_ids(who) == [first.json()["id"]]


def test_keys_belong_to_one_customer(api: Api) -> None:
    alice, bob = customer(), customer()
    a = api.place(alice, key="shared-key")
    b = api.place(bob, key="shared-key")
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]
    assert "idempotent-replayed" not in b.headers
    assert api.listed_ids(alice) == [a.json()["id"]]
    assert api.listed_ids(bob) == [b.json()["id"]]


async def place_concurrently(api: Api, bodies: list[dict[str, object]], key: str) -> list[int]:
    who = customer()
    headers = {**api.auth(who), "Idempotency-Key": key}
    async with httpx.AsyncClient(base_url=api.system.url, timeout=30) as http:
        responses = await asyncio.gather(
            *(http.post(ORDERS, json=body, headers=headers) for body in bodies)
        )
    ok = [r for r in responses if r.status_code == 202]
    assert {r.json()["id"] for r in ok} == set(api.listed_ids(who)), "one order, the same for all"
    assert len(api.listed_ids(who)) == 1
    assert Counter(r.headers.get("Idempotent-Replayed") for r in ok)[None] == 1
    return [r.status_code for r in responses]


async def test_concurrent_requests_with_one_key_make_one_order(api: Api) -> None:
    statuses = await place_concurrently(api, [order_body([("MUG-WHT", 1)])] * 10, "burst")
    assert statuses == [202] * 10


async def test_concurrent_different_bodies_with_one_key_make_one_order(api: Api) -> None:
    bodies = [order_body([("MUG-WHT", 1)]), order_body([("CAP-RED", 1)])] * 5
    statuses = await place_concurrently(api, bodies, "burst")
    # The winner's body is replayed, the other body is refused: 5 of one kind, 5 of the other.
    assert Counter(statuses) == {202: 5, 422: 5}


# --- ownership --------------------------------------------------------------------------------


def test_another_customers_order_looks_missing(api: Api) -> None:
    alice, bob = customer(), customer()
    oid = api.place(alice).json()["id"]
    missing = assert_problem(api.get(f"{ORDERS}/{uuid.uuid4()}", bob), 404)
    foreign = assert_problem(api.get(f"{ORDERS}/{oid}", bob), 404)
    assert foreign["title"] == missing["title"]
    assert_problem(api.cancel(oid, bob), 404)
    order = api.order(oid, alice)
    assert order["status"] == "pending"
    assert len(order["timeline"]) == 1
    assert oid not in api.listed_ids(bob)


def test_admin_reads_any_order(api: Api) -> None:
    alice, boss = customer(), admin()
    oid = api.place(alice).json()["id"]
    order = api.order(oid, boss)
    assert order["customer_id"] == alice.subject
    assert oid in api.listed_ids(boss, limit=100)


def test_listing_shows_only_the_callers_orders(api: Api) -> None:
    alice, bob = customer(), customer()
    mine = {api.place(alice).json()["id"] for _ in range(3)}
    theirs = {api.place(bob).json()["id"] for _ in range(2)}
    assert set(api.listed_ids(alice)) == mine
    assert set(api.listed_ids(bob)) == theirs
    page = api.get(ORDERS, alice).json()
    assert {o["customer_id"] for o in page["items"]} == {alice.subject}


def test_cursor_pagination_walks_every_order_once(api: Api) -> None:
    who = customer()
    placed = [api.place(who, [("SOCKS-3PK", i + 1)]).json()["id"] for i in range(25)]
    pages: list[list[str]] = []
    cursor = None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        response = api.get(ORDERS, who, **params)
        assert response.status_code == 200, response.text
        pages.append([o["id"] for o in response.json()["items"]])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    walked = [oid for page in pages for oid in page]
    assert walked == placed[::-1], "newest first, each exactly once"


def test_status_filter(api: Api) -> None:
    who = customer()
    placed = [api.place(who).json()["id"] for _ in range(6)]
    for oid in placed[:4]:
        assert api.cancel(oid, who).status_code == 202
    assert set(api.listed_ids(who, status="cancelled", limit=3)) == set(placed[:4])
    assert set(api.listed_ids(who, status="pending")) == set(placed[4:])
    assert api.listed_ids(who, status="confirmed") == []
    assert len(api.listed_ids(who)) == 6


def test_the_assertion_header_name_is_the_documented_one(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert [s["name"] for s in schemes.values()] == [HEADER]


def test_json_numbers_with_a_zero_fraction_are_integers(api: Api) -> None:
    # JSON (and JSON Schema's "integer") do not tell 2.0 from 2; strings and 2.5 stay refused.
    body = order_body([("MUG-WHT", 1)])
    body["items"] = [{"sku": "MUG-WHT", "quantity": 2.0}]
    response = api.http.post(ORDERS, json=body, headers=api.auth(customer()))
    assert response.status_code == 202, response.text
    assert response.json()["lines"][0]["quantity"] == 2
