"""The gateway's edge (issue 11): what a client sends that a backend might read differently, and
what an upstream answers that a client must never see. Raw sockets where an HTTP client would
normalise the request away."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from structlog.testing import capture_logs
from structlog.typing import EventDict

from orderflow.adapters.identity.assertions import AssertionSigner, ensure_signing_key
from orderflow.domain.identity import Identity
from tests.gateway.gateway_harness import (
    Stack,
    admin,
    bearer,
    build_stack,
    customer,
    raw_exchange,
    raw_request,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The standard stack plus a stricter rule nested in a looser one."""
    nested = {"prefix": "/api/admin", "upstream": "echo", "access": "roles", "roles": ["admin"]}
    async with build_stack(tmp_path_factory.mktemp("edge"), extra_routes=[nested]) as built:
        yield built


def auth_line(tokens: dict[str, Any]) -> bytes:
    return f"Authorization: Bearer {tokens['access_token']}\r\n".encode()


async def test_case_variants_get_the_nested_stricter_rule(stack: Stack) -> None:
    ann = auth_line(await customer(stack.client, "case@example.com"))
    root = auth_line(await admin(stack.client, stack.settings, stack.gw, "case-root@example.com"))
    assert (await raw_request(stack.url, b"GET /api/orders HTTP/1.1", ann))[0] == 200
    for target in (b"/api/ADMIN/x", b"/API/admin/x", b"/Api/Admin", b"/api/%41dmin/x"):
        status, raw = await raw_request(stack.url, b"GET " + target + b" HTTP/1.1", ann)
        assert status == 403, raw
        # The rule is applied, not the path refused: an admin gets through, path as sent.
        status, raw = await raw_request(stack.url, b"GET " + target + b" HTTP/1.1", root)
        assert status == 200, raw
        assert f'"raw_path":"{target.decode()}"'.encode() in raw


@pytest.mark.parametrize(
    "target",
    [
        b"/api/admin;x/y",
        b"/api/admin%3bx/y",
        b"/api;/admin/x",
        b"/api/admin./x",
        b"/api/admin%2e/x",
        b"/api/admin%2E",
        b"/api/admin%20/x",
        b"/api/%20admin/x",
        b"/api/admin%EF%BC%8E/x",
        b"/api/x%C2%85y",
        b"/api/%C2%9B",
    ],
)
async def test_segments_a_backend_might_trim_or_split_are_refused(
    stack: Stack, target: bytes
) -> None:
    status, raw = await raw_request(stack.url, b"GET " + target + b" HTTP/1.1")
    assert status == 400, raw
    assert b"application/problem+json" in raw
    assert b'"reason":"non_canonical_path"' in raw


async def test_lookalike_identity_headers_never_reach_the_upstream(stack: Stack) -> None:
    tokens = await customer(stack.client, "lookalike@example.com")
    stolen = AssertionSigner(ensure_signing_key(stack.settings.identity_keys_dir)).sign(
        Identity("someone-else", frozenset({"admin"}))
    )
    response = await stack.client.get(
        "/api/orders",
        headers={
            **bearer(tokens),
            "X_OrderFlow_Identity": stolen,
            "X_Forwarded_For": "10.9.9.9",
            "Remote_User": "root",
            "X_Forwarded_User": "root",
            "x_real_ip": "10.9.9.9",
        },
    )
    assert response.status_code == 200, response.text
    seen = {name.replace("_", "-") for name, _ in response.json()["headers"]}
    sent = {"remote-user", "x-forwarded-user", "x-real-ip"}
    assert not sent & seen
    names = [name for name, _ in response.json()["headers"]]
    assert [n for n in names if n.replace("_", "-") == "x-orderflow-identity"] == [
        "x-orderflow-identity"
    ]
    assert [v for n, v in response.json()["headers"] if "forwarded-for" in n.replace("_", "-")] == [
        "127.0.0.1"
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"email": "c1name@example.com", "name": "Eve\x9b31m"},
        {"email": "c1name@example.com", "name": "\x85"},
        {"email": "c1\x85mail@example.com", "name": "Eve"},
    ],
)
async def test_c1_controls_in_account_fields_are_422(stack: Stack, body: dict[str, str]) -> None:
    response = await stack.client.post(
        "/auth/register", json={**body, "password": "correct horse battery"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_c1_controls_in_an_api_key_name_are_422(stack: Stack) -> None:
    root = await admin(stack.client, stack.settings, stack.gw, "c1-root@example.com")
    bad = await stack.client.post(
        "/auth/api-keys", json={"name": "ci\x9bkey", "scopes": ["orders"]}, headers=bearer(root)
    )
    assert bad.status_code == 422, bad.text
    fine = await stack.client.post(
        "/auth/api-keys", json={"name": "ci key", "scopes": ["orders"]}, headers=bearer(root)
    )
    assert fine.status_code == 201, fine.text


@pytest.mark.parametrize(
    "hosts",
    [
        b"Host: gw\r\nHost: evil.example\r\n",
        b"Host: gw\r\nhost: gw\r\n",
        b"",
        b"Host: gw\x85\r\n",
        b"Host: gw/evil\r\n",
        b"Host: gw evil\r\n",
    ],
)
async def test_requests_need_exactly_one_valid_host(stack: Stack, hosts: bytes) -> None:
    request = b"GET /public/x HTTP/1.1\r\n" + hosts + b"Connection: close\r\n\r\n"
    status, raw = await raw_exchange(stack.url, request)
    assert status == 400, raw
    assert b"application/problem+json" in raw
    assert b"x-request-id:" in raw.lower()


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /public/x HTTP/1.1\r\nHost: shop.example:8443\r\n",
        b"GET /public/x HTTP/1.1\r\nHost: [::1]:8080\r\n",
        b"GET /public/x HTTP/1.0\r\n",
    ],
)
async def test_one_valid_host_or_none_on_http_1_0_passes(stack: Stack, request_head: bytes) -> None:
    status, raw = await raw_exchange(stack.url, request_head + b"Connection: close\r\n\r\n")
    assert status == 200, raw


async def test_a_trailing_slash_redirect_never_shows_the_internal_address(stack: Stack) -> None:
    tokens = await customer(stack.client, "slash@example.com")
    response = await stack.client.get("/api/shop/items?a=1", headers=bearer(tokens))
    assert response.status_code == 307, response.text
    assert response.headers["location"] == "/api/shop/items/?a=1"
    internal = stack.upstream_url.removeprefix("http://")
    assert internal not in str(response.headers.raw)
    followed = await stack.client.get(
        "/api/shop/items?a=1", headers=bearer(tokens), follow_redirects=True
    )
    assert followed.status_code == 200
    assert followed.json()["path"] == "/api/shop/items/"


async def test_upstream_urls_naming_an_internal_host_are_made_relative(stack: Stack) -> None:
    tokens = await customer(stack.client, "location@example.com")
    internal = stack.upstream_url.removeprefix("http://")
    port = internal.rsplit(":", 1)[1]
    cases = {
        f"http://{internal}/api/orders/1?x=2": "/api/orders/1?x=2",
        f"//{internal}/a": "/a",
        f"http:/{internal}/a": "/a",
        f"HTTP:\\\\{internal}\\a": "/a",
        f"http://localhost:{port}/a": "/a",
        f"http://2130706433:{port}/a": "/a",
        "http://10.1.2.3/b": "/b",
        "/relative?q=1": "/relative?q=1",
        "https://pay.example.com/checkout": "https://pay.example.com/checkout",
    }
    for sent, expected in cases.items():
        response = await stack.client.get(
            "/api/redirect", params={"to": sent}, headers=bearer(tokens)
        )
        assert response.status_code == 302
        assert response.headers.get_list("location") == [expected], sent
        assert response.headers.get_list("content-location") == [expected], sent
    paged = await stack.client.get(
        "/api/redirect", params={"to": f"http://{internal}/api/x?page=2"}, headers=bearer(tokens)
    )
    assert paged.headers["link"] == '</api/x?page=2>; rel="next"'
    unreadable = await stack.client.get(
        "/api/redirect", params={"to": f"http://{internal}/a b"}, headers=bearer(tokens)
    )
    assert "location" not in unreadable.headers
    assert internal not in str(unreadable.headers.raw)


async def test_a_client_gone_mid_body_is_one_info_line_without_traceback(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    logged = asyncio.Event()

    def notice(_: object, __: str, event: EventDict) -> EventDict:
        if event.get("event") == "request" and event.get("path") == "/public/gone":
            logged.set()
        return event

    host, port = stack.url.removeprefix("http://").split(":")
    with caplog.at_level(logging.INFO), capture_logs(processors=[notice]) as logs:
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /public/gone HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(logged.wait(), 10)
    mine = [e for e in logs if e.get("path") == "/public/gone" or e["event"] != "request"]
    assert [(e["event"], e["log_level"]) for e in mine] == [
        ("client disconnected", "info"),
        ("request", "info"),
    ]
    assert mine[1]["status"] == 499
    assert not any("exc_info" in e or "exception" in e for e in logs)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert not any(r.exc_info for r in caplog.records)
