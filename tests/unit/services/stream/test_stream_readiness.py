"""The stream process's /readyz answers like the API's and the gateway's: 200 JSON when ready,
else 503 problem+json naming what failed, never why (it needs no credentials)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
from structlog.testing import capture_logs

from orderflow.services.stream.app import create_stream_app


class UnreachableStorage:
    async def ping(self) -> None:
        raise ConnectionError("cannot reach postgresql://root:s3cret@db:5432/orderflow")


class Storage:
    async def ping(self) -> None:
        return None


async def readyz(ctx: SimpleNamespace) -> httpx.Response:
    app = create_stream_app(ctx)  # type: ignore[arg-type]  # only what /readyz reads
    transport = httpx.ASGITransport(app=app)  # no lifespan: the feed is not started
    async with httpx.AsyncClient(transport=transport, base_url="http://stream") as client:
        return await client.get("/readyz")


async def test_an_unreachable_database_is_named_without_its_error() -> None:
    ctx = SimpleNamespace(storage=UnreachableStorage(), feed=SimpleNamespace(ready=asyncio.Event()))
    with capture_logs() as logs:
        response = await readyz(ctx)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["title"], problem["failed"]) == ("Service Unavailable", ["database", "broker"])
    assert "s3cret" not in response.text
    assert "db:5432" not in response.text
    failed = [e["check"] for e in logs if e["event"] == "readiness check failed"]
    assert failed == ["database", "broker"]


async def test_a_feed_still_joining_the_broker_is_not_ready() -> None:
    ctx = SimpleNamespace(storage=Storage(), feed=SimpleNamespace(ready=asyncio.Event()))
    response = await readyz(ctx)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["failed"] == ["broker"]


async def test_ready_names_each_check_and_counts_subscriptions() -> None:
    joined = asyncio.Event()
    joined.set()
    ctx = SimpleNamespace(storage=Storage(), feed=SimpleNamespace(ready=joined), hub=[1, 2])
    response = await readyz(ctx)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "ok",
        "broker": "ok",
        "subscriptions": 2,
    }
