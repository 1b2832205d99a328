"""The stream process's /readyz needs no credentials, so it names what failed, never why."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
from structlog.testing import capture_logs

from orderflow.services.stream.app import create_stream_app


class UnreachableStorage:
    async def ping(self) -> None:
        raise ConnectionError("cannot reach postgresql://root:s3cret@db:5432/orderflow")


async def test_an_unreachable_database_is_named_without_its_error() -> None:
    ctx = SimpleNamespace(storage=UnreachableStorage(), feed=SimpleNamespace(ready=asyncio.Event()))
    app = create_stream_app(ctx)  # type: ignore[arg-type]  # only what /readyz reads
    transport = httpx.ASGITransport(app=app)  # no lifespan: the feed is not started

    with capture_logs() as logs:
        async with httpx.AsyncClient(transport=transport, base_url="http://stream") as client:
            response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "database": "unreachable"}
    assert [e["check"] for e in logs if e["event"] == "readiness check failed"] == ["database"]
