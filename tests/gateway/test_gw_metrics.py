"""The gateway's /metrics: its own numbers for an admin (or an API key with the `metrics` scope),
404 to everyone else, and never forwarded to an upstream, even where a `/` route would take it
(the default table sends `/` to the stream service, whose metrics must not be public)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.gateway.gateway_harness import Stack, admin, bearer, build_stack, customer
from tests.support.metrics import Scrape

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    root: Path = tmp_path_factory.mktemp("gateway-metrics")

    # The echo upstream answers 200 on any path: a /metrics that slipped through would show.
    everything = [{"prefix": "/", "upstream": "echo", "access": "public"}]
    async with build_stack(root, routes=[], extra_routes=everything) as built:
        yield built


async def _api_key(stack: Stack, root: dict[str, str], scopes: list[str]) -> str:
    response = await stack.client.post(
        "/auth/api-keys", headers=bearer(root), json={"name": "prometheus", "scopes": scopes}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def test_an_admin_reads_the_gateways_own_metrics(stack: Stack) -> None:
    root = await admin(stack.client, stack.settings, stack.gw, "metrics-admin@example.com")
    await stack.client.get("/some/page/42")  # proxied through the catch-all
    answer = await stack.client.get("/metrics", headers=bearer(root))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    scraped = Scrape.parse(answer.text)
    # Counted by route template, never by raw path.
    count = "orderflow_http_request_seconds_count"
    assert scraped.value(count, route="/{path}", method="GET", status="200") >= 1
    assert scraped.value(count, route="/auth/token", method="POST", status="200") >= 1
    assert not any("/some/page/42" in str(labels) for _, labels, _ in scraped.samples)


async def test_an_api_key_needs_the_metrics_scope(stack: Stack) -> None:
    root = await admin(stack.client, stack.settings, stack.gw, "keys-admin@example.com")
    with_scope = await _api_key(stack, root, ["metrics"])
    without = await _api_key(stack, root, ["orders:read"])
    allowed = await stack.client.get("/metrics", headers={"X-API-Key": with_scope})
    assert allowed.status_code == 200
    assert "orderflow_http_request_seconds" in allowed.text
    refused = await stack.client.get("/metrics", headers={"Authorization": f"Bearer {without}"})
    assert refused.status_code == 404


@pytest.mark.parametrize(
    "credentials",
    [
        "none",
        "customer",
        "a bad token",
    ],
)
async def test_anyone_else_gets_404_and_nothing_is_forwarded(
    stack: Stack, credentials: str
) -> None:
    headers: dict[str, str] = {}
    if credentials == "customer":
        headers = bearer(await customer(stack.client, "metrics-shopper@example.com"))
    elif credentials == "a bad token":
        headers = bearer("not-a-token")
    answer = await stack.client.get("/metrics", headers=headers)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert "orderflow_" not in answer.text
    assert "identity" not in answer.text  # the echo upstream's answer
