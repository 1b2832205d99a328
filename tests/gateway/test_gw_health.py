"""The gateway's own liveness and readiness: no credentials needed, never proxied, and readiness
follows the gateway's database (here a PostgreSQL database that is dropped under it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.gateway_harness import build_stack
from tests.support.databases import drop_database, fresh_database


@pytest.fixture
def gateway_database(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


async def test_readyz_follows_the_gateway_database(tmp_path: Path, gateway_database: str) -> None:
    async with build_stack(tmp_path, database_url=gateway_database) as gw:
        alive, ready = await gw.client.get("/healthz"), await gw.client.get("/readyz")
        assert (alive.status_code, ready.status_code) == (200, 200)
        assert ready.json() == {"status": "ready", "database": "ok"}

        await drop_database(gateway_database)
        gone = await gw.client.get("/readyz")
        assert gone.status_code == 503
        assert gone.headers["content-type"] == "application/problem+json"
        assert "gateway database unreachable" in gone.json()["detail"]
        assert gone.json()["failed"] == ["database"]
        assert gateway_database not in gone.text  # no connection details leak out
        assert (await gw.client.get("/healthz")).status_code == 200  # alive, just not ready
