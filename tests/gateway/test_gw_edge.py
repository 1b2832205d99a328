"""The gateway's edge (issue 11): what a client sends that a backend might read differently, and
what an upstream answers that a client must never see. Raw sockets where an HTTP client would
normalise the request away."""

from __future__ import annotations

import pytest

from orderflow.adapters.identity.assertions import AssertionSigner, ensure_signing_key
from orderflow.domain.identity import Identity
from tests.gateway.gateway_harness import Stack, bearer, customer

pytestmark = pytest.mark.asyncio(loop_scope="module")


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
