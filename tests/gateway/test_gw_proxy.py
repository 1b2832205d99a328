"""HTTP proxying: identity forwarding, request ids, streaming, limits, path tricks, headers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from orderflow.adapters.identity.assertions import AssertionSigner, ensure_signing_key
from orderflow.domain.identity import Identity
from tests.gateway.gateway_harness import (
    Stack,
    admin,
    bearer,
    build_stack,
    customer,
    free_port,
    raw_request,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_upstream_gets_the_callers_identity_and_never_the_clients_claims(
    stack: Stack,
) -> None:
    tokens = await customer(stack.client, "id@example.com")
    me = (await stack.client.get("/auth/me", headers=bearer(tokens))).json()
    # A genuinely signed assertion for an admin, replayed by the client, must not get through.
    stolen = AssertionSigner(ensure_signing_key(stack.settings.identity_keys_dir)).sign(
        Identity("someone-else", frozenset({"admin"}))
    )
    response = await stack.client.post(
        "/api/orders?x=1",
        headers={
            **bearer(tokens),
            "X-OrderFlow-Identity": stolen,
            "x-orderflow-roles": "admin",
            "X-Forwarded-User": "root",
            "X-Forwarded-For": "10.9.9.9",
        },
        content=b"hello",
    )
    assert response.status_code == 200
    echo = response.json()
    assert echo["identity"] == {
        "subject": me["id"],
        "roles": ["customer"],
        "scopes": [],
        "email": "id@example.com",
    }
    names = [name for name, _ in echo["headers"]]
    assert names.count("x-orderflow-identity") == 1
    assert not {"x-orderflow-roles", "x-forwarded-user", "authorization"} & set(names)
    forwarded_for = [v for n, v in echo["headers"] if n == "x-forwarded-for"]
    assert forwarded_for == ["127.0.0.1"]
    assert (echo["method"], echo["path"], echo["query"], echo["body_length"]) == (
        "POST",
        "/api/orders",
        "x=1",
        5,
    )
    assert response.headers["x-upstream"] == "yes"
    assert response.headers["set-cookie"] == "a=1"


async def test_public_route_forwards_an_anonymous_assertion(stack: Stack) -> None:
    response = await stack.client.get("/public/page")
    assert response.status_code == 200
    assert response.json()["identity"]["subject"] == "anonymous"
    assert response.json()["identity"]["roles"] == []


async def test_protected_routes_refuse_anonymous_and_wrong_roles(stack: Stack) -> None:
    anonymous = await stack.client.get("/api/orders")
    assert anonymous.status_code == 401
    assert anonymous.json()["reason"] == "missing_credentials"
    tokens = await customer(stack.client, "role@example.com")
    admin_page = await stack.client.get("/admin/page", headers=bearer(tokens))
    assert admin_page.status_code == 403
    assert admin_page.headers["content-type"] == "application/problem+json"
    unrouted = await stack.client.get("/nothing/here", headers=bearer(tokens))
    assert unrouted.status_code == 404


async def test_request_id_is_kept_when_well_formed_and_logged(stack: Stack) -> None:
    tokens = await customer(stack.client, "rid@example.com")
    with capture_logs() as logs:
        kept = await stack.client.get(
            "/api/x", headers={**bearer(tokens), "X-Request-Id": "client-req-12345"}
        )
        replaced = await stack.client.get(
            "/api/x", headers={**bearer(tokens), "X-Request-Id": "bad id\twith junk"}
        )
    assert kept.headers["x-request-id"] == "client-req-12345"
    sent = [v for n, v in kept.json()["headers"] if n == "x-request-id"]
    assert sent == ["client-req-12345"]
    new_id = replaced.headers["x-request-id"]
    assert new_id != "bad id\twith junk"
    assert len(new_id) == 32
    assert [v for n, v in replaced.json()["headers"] if n == "x-request-id"] == [new_id]
    logged = {entry.get("request_id") for entry in logs if entry["event"] == "request"}
    assert {"client-req-12345", new_id} <= logged


async def test_assertions_are_reused_per_identity(stack: Stack) -> None:
    tokens = await customer(stack.client, "reuse@example.com")
    first = (await stack.client.get("/api/a", headers=bearer(tokens))).json()
    second = (await stack.client.get("/api/b", headers=bearer(tokens))).json()

    def assertion(echo: dict[str, list[list[str]]]) -> str:
        return next(v for n, v in echo["headers"] if n == "x-orderflow-identity")

    assert assertion(first) == assertion(second)


async def test_sse_is_streamed_without_buffering(stack: Stack) -> None:
    tokens = await customer(stack.client, "sse@example.com")
    stack.release.clear()
    async with stack.client.stream("GET", "/events/stream", headers=bearer(tokens)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        # The upstream holds the second event back until we have seen the first: a buffering
        # proxy would hang here.
        first = await asyncio.wait_for(anext(lines), timeout=3)
        assert first == "data: first"
        stack.release.set()
        rest = [line async for line in lines]
    assert "data: second" in rest


async def test_large_streamed_response_arrives_whole(stack: Stack) -> None:
    tokens = await customer(stack.client, "big@example.com")
    response = await stack.client.get("/api/big", headers=bearer(tokens))
    assert response.status_code == 200
    assert len(response.content) == 64 * 16384


async def test_upstream_timeout_is_504(stack: Stack) -> None:
    tokens = await customer(stack.client, "slow@example.com")
    response = await stack.client.get("/api/slow", headers=bearer(tokens))
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == "timeout"


async def test_oversized_bodies_are_413(stack: Stack) -> None:
    tokens = await customer(stack.client, "huge@example.com")
    too_big = b"x" * (stack.gw.max_body_bytes + 1)
    declared = await stack.client.post("/api/orders", headers=bearer(tokens), content=too_big)
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"

    async def chunks() -> object:
        for _ in range(stack.gw.max_body_bytes // 65536 + 2):
            yield b"y" * 65536

    chunked = await stack.client.post("/api/orders", headers=bearer(tokens), content=chunks())
    assert chunked.status_code == 413
    login_flood = await stack.client.post(
        "/auth/register", content=too_big, headers={"content-type": "application/json"}
    )
    assert login_flood.status_code == 413
    fits = await stack.client.post(
        "/api/orders", headers=bearer(tokens), content=b"x" * stack.gw.max_body_bytes
    )
    assert fits.status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        b"/api/../admin/page",
        b"/api/%2e%2e/admin/page",
        b"/api/./x",
        b"/api%2Fx",
        b"/api%2fx",
        b"//admin/page",
        b"/api//x",
        b"/api\\..\\admin",
        b"/api/%5c../admin",
        b"/api/%252e%252e/admin",
        b"/api/x%00",
        b"/api/%zz",
        b"/admin/%2e%2e/api/x",
    ],
)
async def test_path_tricks_are_refused(stack: Stack, target: bytes) -> None:
    status, raw = await raw_request(stack.url, b"GET " + target + b" HTTP/1.1")
    assert status in (400, 404), raw
    assert b"application/problem+json" in raw


async def test_canonical_raw_request_still_works(stack: Stack) -> None:
    # The control for the path tricks: the same raw client reaches a canonical path.
    status, raw = await raw_request(stack.url, b"GET /public/a%20b HTTP/1.1")
    assert status == 200, raw
    assert b'"raw_path":"/public/a%20b"' in raw


async def test_security_headers_on_html(stack: Stack) -> None:
    tokens = await admin(stack.client, stack.settings, stack.gw, "html-admin@example.com")
    page = await stack.client.get("/admin/page", headers=bearer(tokens))
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    api = await stack.client.get("/healthz")
    assert "x-frame-options" not in api.headers
    assert api.headers["x-content-type-options"] == "nosniff"


async def test_unreachable_upstream_is_502(tmp_path: Path) -> None:
    routes = [{"prefix": "/api", "upstream": f"http://127.0.0.1:{free_port()}"}]
    async with build_stack(tmp_path, routes) as down:
        tokens = await customer(down.client, "down@example.com")
        response = await down.client.get("/api/x", headers=bearer(tokens))
    assert response.status_code == 502
    assert response.json()["reason"] == "unreachable"
    assert response.headers["content-type"] == "application/problem+json"


async def test_direct_request_to_a_backend_port_is_refused(stack: Stack) -> None:
    # What bypassing the gateway gets from a backend that verifies assertions.
    async with httpx.AsyncClient(base_url=stack.upstream_url) as direct:
        assert (await direct.get("/api/orders")).status_code == 401
        forged = AssertionSigner(ensure_signing_key(stack.settings.data_dir / "other-keys")).sign(
            Identity("x", frozenset({"admin"}))
        )
        spoofed = await direct.get("/api/orders", headers={"X-OrderFlow-Identity": forged})
        assert spoofed.status_code == 401
