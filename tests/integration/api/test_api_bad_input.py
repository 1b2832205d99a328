"""Bad input to the order API: a 4xx problem+json with the reason, never a 500, nothing written."""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from orderflow.domain.identity import Identity
from tests.integration.api.harness import ORDERS, PRODUCTS, Api, assert_problem, row_counts
from tests.support.system import customer, order_body

VALID: dict[str, Any] = order_body([("MUG-WHT", 2), ("CAP-RED", 1)])


def body_with(path: str, value: Any) -> dict[str, Any]:
    """VALID with the value at a dotted path replaced (`...` deletes it)."""
    body = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[int(last) if last.isdigit() else last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return body


def items(*lines: tuple[Any, Any]) -> dict[str, Any]:
    return body_with("items", [{"sku": sku, "quantity": qty} for sku, qty in lines])


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.fixture
def who(api: Api) -> Iterator[Identity]:
    """A fresh customer; after the test, nothing may have been written for anyone."""
    before = row_counts(api.system.data_dir)
    person = customer("bad-input@example.com")
    yield person
    assert row_counts(api.system.data_dir) == before
    assert api.listed_ids(person) == []


JSON_BODIES = [
    pytest.param(items(("NO-SUCH-SKU", 1)), "Order cannot be priced", id="unknown-sku"),
    pytest.param(items(("MUG-WHT", 1), ("NOPE", 1)), "NOPE", id="one-unknown-sku-of-two"),
    pytest.param(items(("MUG-WHT", 0)), "quantity", id="quantity-zero"),
    pytest.param(items(("MUG-WHT", -3)), "quantity", id="quantity-negative"),
    pytest.param(items(("MUG-WHT", 10_001)), "quantity", id="quantity-over-10000"),
    pytest.param(items(("MUG-WHT", 10**30)), "quantity", id="quantity-absurd"),
    pytest.param(items(), "items", id="empty-item-list"),
    pytest.param(items(*((f"SKU-{i}", 1) for i in range(101))), "items", id="101-lines"),
    pytest.param(items(("MUG-WHT", 1), ("MUG-WHT", 2)), "duplicate sku", id="duplicate-skus"),
    pytest.param(items(("MUG-WHT", "2")), "quantity", id="string-quantity"),
    pytest.param(items(("MUG-WHT", 1.5)), "quantity", id="float-quantity"),
    pytest.param(items(("MUG-WHT", True)), "quantity", id="bool-quantity"),
    pytest.param(items(("MUG-WHT", None)), "quantity", id="null-quantity"),
    pytest.param(items((123, 1)), "sku", id="number-sku"),
    pytest.param(items(("", 1)), "sku", id="empty-sku"),
    pytest.param(items(("MUG WHT; DROP TABLE", 1)), "sku", id="sku-bad-characters"),
    pytest.param(body_with("items", {"sku": "MUG-WHT", "quantity": 1}), "items", id="items-object"),
    pytest.param(body_with("items.0", "MUG-WHT"), "items", id="item-string"),
    pytest.param(
        body_with("shipping_address", "12 Analytical St"), "shipping_address", id="address-string"
    ),
    pytest.param(body_with("payment.token", 4242), "token", id="number-token"),
    pytest.param(body_with("payment", None), "payment", id="null-payment"),
    pytest.param([VALID], "body", id="top-level-array"),
    pytest.param(None, "body", id="null-body"),
    pytest.param(body_with("items", ...), "items", id="missing-items"),
    pytest.param(body_with("shipping_address", ...), "shipping_address", id="missing-address"),
    pytest.param(body_with("payment", ...), "payment", id="missing-payment"),
    pytest.param(body_with("payment.token", ...), "token", id="missing-token"),
    pytest.param(body_with("items.0.quantity", ...), "quantity", id="missing-quantity"),
    pytest.param(body_with("items.0.sku", ...), "sku", id="missing-sku"),
    pytest.param(body_with("shipping_address.country", ...), "country", id="missing-country"),
    pytest.param(body_with("shipping_address.name", "   "), "name", id="blank-name"),
    pytest.param(body_with("coupon", "FREE"), "coupon", id="unknown-top-level-field"),
    pytest.param(body_with("items.0.discount", 50), "discount", id="unknown-item-field"),
    pytest.param(
        body_with("shipping_address.planet", "Mars"), "planet", id="unknown-address-field"
    ),
    pytest.param(body_with("payment.amount", 1), "amount", id="unknown-payment-field"),
    pytest.param(body_with("shipping_address.country", "gb"), "country", id="country-lowercase"),
    pytest.param(body_with("shipping_address.country", "GBR"), "country", id="country-alpha-3"),
    pytest.param(body_with("shipping_address.country", "G1"), "country", id="country-digit"),
    pytest.param(body_with("shipping_address.country", ""), "country", id="country-empty"),
    pytest.param(body_with("shipping_address.country", 44), "country", id="country-number"),
    # Control characters: PostgreSQL refuses NUL, which once failed every order sharing the commit.
    pytest.param(body_with("shipping_address.name", "Ada\x00"), "name", id="nul-in-name"),
    pytest.param(body_with("shipping_address.line2", "Flat\x07"), "line2", id="bell-in-line2"),
    pytest.param(body_with("shipping_address.city", "Lon\ndon"), "city", id="newline-in-city"),
    pytest.param(body_with("payment.token", "tok_visa\x00"), "token", id="nul-in-token"),
    # C1 controls (U+0080-U+009F): U+009B is a terminal's CSI, like ESC [.
    pytest.param(body_with("shipping_address.name", "Ada\x9b31m"), "name", id="c1-csi-in-name"),
    pytest.param(body_with("shipping_address.city", "Lon\x85don"), "city", id="c1-nel-in-city"),
    pytest.param(body_with("payment.token", "tok visa"), "token", id="space-in-token"),
]


@pytest.mark.parametrize(("body", "reason"), JSON_BODIES)
def test_invalid_order_body_is_refused(api: Api, who: Identity, body: Any, reason: str) -> None:
    response = api.http.post(ORDERS, json=body, headers=api.auth(who))
    problem = assert_problem(response, 422)
    assert reason in problem["detail"] or reason in problem["title"], problem


RAW_BODIES = [
    pytest.param(b'{"items": [', id="truncated"),
    pytest.param(b'{"items": [],}', id="trailing-comma"),
    pytest.param(b"{'items': []}", id="single-quotes"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b"[" * 20_000 + b"]" * 20_000, id="nested-20000-deep"),
]


@pytest.mark.parametrize("raw", RAW_BODIES)
def test_malformed_json_is_400(api: Api, who: Identity, raw: bytes) -> None:
    headers = {**api.auth(who), "Content-Type": "application/json"}
    problem = assert_problem(api.http.post(ORDERS, content=raw, headers=headers), 400)
    assert problem["title"] == "Bad Request"
    # FastAPI's own parse failure (the nesting one) has its own wording.
    assert "JSON" in problem["detail"] or "parsing the body" in problem["detail"], problem


def test_missing_body_is_422(api: Api, who: Identity) -> None:
    problem = assert_problem(api.http.post(ORDERS, headers=api.auth(who)), 422)
    assert "body" in problem["detail"]


def oversized() -> bytes:
    body = body_with("shipping_address.line2", "x" * (64 * 1024))
    return orjson.dumps(body)


def test_oversized_body_with_content_length_is_413(api: Api, who: Identity) -> None:
    raw = oversized()
    headers = {**api.auth(who), "Content-Type": "application/json"}
    response = api.http.post(ORDERS, content=raw, headers=headers)
    problem = assert_problem(response, 413)
    assert "65536" in problem["detail"]


def test_oversized_chunked_body_is_413(api: Api, who: Identity) -> None:
    raw = oversized()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), 4096):
            yield raw[start : start + 4096]

    headers = {**api.auth(who), "Content-Type": "application/json"}
    request = api.http.build_request("POST", ORDERS, content=chunks(), headers=headers)
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    problem = assert_problem(api.http.send(request), 413)
    assert "65536" in problem["detail"]


@pytest.mark.parametrize("key", [b"k" * 201, b"key\x85c1", b"key\x9b"])
def test_idempotency_key_too_long_or_not_printable_is_422(
    api: Api, who: Identity, key: bytes
) -> None:
    headers = {**api.auth(who), "Idempotency-Key": key}
    problem = assert_problem(api.http.post(ORDERS, json=VALID, headers=headers), 422)
    assert "Idempotency-Key" in problem["detail"]


BAD_IDS = [
    pytest.param("not-a-uuid", id="word"),
    pytest.param("12345", id="number"),
    pytest.param("6f1c0b2e-0000-0000-0000", id="truncated-uuid"),
    pytest.param("6f1c0b2e-0000-0000-0000-00000000000g", id="non-hex-uuid"),
    pytest.param("%27%20OR%201%3D1", id="sql-ish"),
]


@pytest.mark.parametrize("order_id", BAD_IDS)
@pytest.mark.parametrize("action", ["read", "cancel"])
def test_non_uuid_order_id_is_422(api: Api, who: Identity, order_id: str, action: str) -> None:
    path = f"{ORDERS}/{order_id}"
    if action == "read":
        response = api.get(path, who)
    else:
        response = api.http.post(f"{path}/cancel", headers=api.auth(who))
    problem = assert_problem(response, 422)
    assert "order_id" in problem["detail"]


BAD_QUERIES = [
    pytest.param(ORDERS, {"cursor": "!!!garbage!!!"}, 400, id="orders-cursor-garbage"),
    pytest.param(ORDERS, {"cursor": "bm90IGpzb24"}, 400, id="orders-cursor-base64-not-json"),
    pytest.param(ORDERS, {"cursor": b64({"a": 1})}, 400, id="orders-cursor-object"),
    pytest.param(ORDERS, {"cursor": b64(["x"])}, 400, id="orders-cursor-one-part"),
    pytest.param(ORDERS, {"cursor": b64([1, 2])}, 400, id="orders-cursor-numbers"),
    pytest.param(ORDERS, {"cursor": b64(["yesterday", "x"])}, 400, id="orders-cursor-bad-time"),
    pytest.param(ORDERS, {"cursor": "A" * 201}, 422, id="orders-cursor-too-long"),
    pytest.param(ORDERS, {"status": "lost"}, 422, id="orders-status-unknown"),
    pytest.param(ORDERS, {"status": "PENDING"}, 422, id="orders-status-uppercase"),
    pytest.param(ORDERS, {"limit": "0"}, 422, id="orders-limit-zero"),
    pytest.param(ORDERS, {"limit": "101"}, 422, id="orders-limit-over-100"),
    pytest.param(ORDERS, {"limit": "ten"}, 422, id="orders-limit-word"),
    pytest.param(PRODUCTS, {"cursor": "%%%"}, 400, id="products-cursor-garbage"),
    pytest.param(PRODUCTS, {"cursor": b64(["a", "b"])}, 400, id="products-cursor-two-parts"),
    pytest.param(
        ORDERS,
        {"cursor": b64(["2026-11-28T00:00:00+00:00", "a\x00"])},
        400,
        id="orders-cursor-nul",
    ),
    pytest.param(PRODUCTS, {"cursor": b64(["MUG\x00"])}, 400, id="products-cursor-nul"),
    pytest.param(PRODUCTS, {"cursor": b64([7])}, 400, id="products-cursor-number"),
    pytest.param(PRODUCTS, {"limit": "-1"}, 422, id="products-limit-negative"),
]


@pytest.mark.parametrize(("path", "params", "status"), BAD_QUERIES)
def test_bad_query_is_refused(
    api: Api, who: Identity, path: str, params: dict[str, str], status: int
) -> None:
    problem = assert_problem(api.get(path, who, **params), status)
    assert problem.get("detail"), problem


@pytest.mark.parametrize("reason", ["changed my mind\x00", "\x1b[31mred", "\x9b31mred", "a\x85b"])
def test_cancel_reason_with_control_characters_is_422(api: Api, who: Identity, reason: str) -> None:
    response = api.http.post(
        f"{ORDERS}/{uuid.uuid4()}/cancel", json={"reason": reason}, headers=api.auth(who)
    )
    problem = assert_problem(response, 422)
    assert "reason" in problem["detail"]
