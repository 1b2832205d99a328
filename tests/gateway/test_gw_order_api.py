"""Through the gateway to the real order API (`orderflow serve api` in its own process)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from orderflow.adapters.identity.assertions import HEADER, AssertionSigner, ensure_signing_key
from orderflow.bootstrap import build_gateway
from orderflow.config import Settings
from orderflow.domain.identity import Identity
from tests.gateway.gateway_harness import bearer, customer, free_port, gateway_settings, serve
from tests.support.system import System, order_body

pytestmark = pytest.mark.asyncio(loop_scope="module")
ORDERS = "/api/v1/orders"


@dataclass
class Through:
    client: httpx.AsyncClient
    api_url: str
    settings: Settings


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def through(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Through]:
    data_dir = tmp_path_factory.mktemp("order-api") / "data"
    settings = Settings(data_dir=data_dir, environment="test")
    api_port = free_port()
    # Built first: it creates the identity key the API loads at start.
    app = build_gateway(settings, gateway_settings(api_upstream=f"http://127.0.0.1:{api_port}"))
    system = await asyncio.to_thread(_start_api, data_dir, api_port)
    try:
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield Through(client, system.url, settings)
    finally:
        await asyncio.to_thread(system.stop)


def _start_api(data_dir: Path, port: int) -> System:
    """`orderflow serve api` alone on a migrated, seeded data dir."""
    for command in ("migrate", "seed"):
        subprocess.run(
            [sys.executable, "-m", "orderflow", command, "--data-dir", str(data_dir)],
            check=True,
            capture_output=True,
        )
    system = System(data_dir, args=("serve", "api"), port=port)
    system.start()
    return system


async def _place(through: Through, tokens: dict[str, Any]) -> dict[str, Any]:
    response = await through.client.post(
        ORDERS, json=order_body([("MUG-WHT", 1)]), headers=bearer(tokens)
    )
    assert response.status_code == 202, response.text
    order: dict[str, Any] = response.json()
    return order


async def test_customer_places_and_reads_an_order(through: Through) -> None:
    tokens = await customer(through.client, "buyer@example.com")
    order = await _place(through, tokens)
    read = await through.client.get(f"{ORDERS}/{order['id']}", headers=bearer(tokens))
    assert read.status_code == 200
    assert read.json()["id"] == order["id"]
    assert read.headers["x-request-id"]


async def test_another_customers_order_is_not_found(through: Through) -> None:
    owner = await customer(through.client, "owner@example.com")
    order = await _place(through, owner)
    other = await customer(through.client, "nosy@example.com")
    read = await through.client.get(f"{ORDERS}/{order['id']}", headers=bearer(other))
    assert read.status_code == 404
    cancel = await through.client.post(f"{ORDERS}/{order['id']}/cancel", headers=bearer(other))
    assert cancel.status_code == 404
    for response in (read, cancel):
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_replayed_identity_header_is_replaced(through: Through) -> None:
    owner = await customer(through.client, "victim@example.com")
    order = await _place(through, owner)
    owner_id = (await through.client.get("/auth/me", headers=bearer(owner))).json()["id"]
    # Suppose the attacker captured a genuine assertion for the victim.
    captured = AssertionSigner(ensure_signing_key(through.settings.identity_keys_dir)).sign(
        Identity(owner_id, frozenset({"customer"}))
    )
    attacker = await customer(through.client, "attacker@example.com")
    read = await through.client.get(
        f"{ORDERS}/{order['id']}", headers={**bearer(attacker), HEADER: captured}
    )
    assert read.status_code == 404
    anonymous = await through.client.get(f"{ORDERS}/{order['id']}", headers={HEADER: captured})
    assert anonymous.status_code == 401


async def test_direct_requests_to_the_api_port_are_refused(through: Through) -> None:
    async with httpx.AsyncClient(base_url=through.api_url) as direct:
        bare = await direct.get(ORDERS)
        assert bare.status_code == 401
        forged = AssertionSigner(
            ensure_signing_key(through.settings.data_dir / "attacker-keys")
        ).sign(Identity("x", frozenset({"admin"})))
        spoofed = await direct.get(ORDERS, headers={HEADER: forged})
        assert spoofed.status_code == 401
        tokens = await customer(through.client, "direct@example.com")
        # A perfectly good access token is no assertion: the API wants the gateway's word.
        with_token = await direct.get(ORDERS, headers=bearer(tokens))
        assert with_token.status_code == 401
