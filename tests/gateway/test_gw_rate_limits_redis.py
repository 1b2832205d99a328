"""Rate limits kept in Redis (ORDERFLOW_GATEWAY_RATE_LIMIT_STORAGE=redis://...): two gateway
processes count against one budget, so a second gateway does not double it; with Redis down a
login is still answered (limited per process), never a 500."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
import redis.asyncio as redis

from tests.gateway.gateway_harness import FAST_HASHING_ENV, build_stack, free_port
from tests.support.services import require_service
from tests.support.system import System

URL = "redis://127.0.0.1:6379/0"
GUESS = {"username": "nobody@example.com", "password": "wrong password"}


@pytest_asyncio.fixture
async def prefix() -> AsyncIterator[str]:
    """This run's own keys in the machine's Redis, removed afterwards."""
    require_service("redis")
    name = f"test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(URL)
    try:
        async for key in client.scan_iter(f"{name}*"):
            await client.delete(key)
    finally:
        await client.aclose()


async def test_two_gateway_processes_share_one_budget(tmp_path: Path, prefix: str) -> None:
    env = {
        **FAST_HASHING_ENV,
        "ORDERFLOW_GATEWAY_RATE_LIMIT_STORAGE": URL,
        "ORDERFLOW_GATEWAY_RATE_LIMIT_PREFIX": prefix,
        "ORDERFLOW_GATEWAY_LOGIN_IP_LIMIT": "4",
    }
    gateways = [System(tmp_path / "data", args=("serve", "gateway"), env=env) for _ in range(2)]
    for gateway in gateways:
        gateway.start()
    try:
        async with (
            httpx.AsyncClient(base_url=gateways[0].public_url, timeout=30) as one,
            httpx.AsyncClient(base_url=gateways[1].public_url, timeout=30) as two,
        ):
            statuses = [(await c.post("/auth/token", data=GUESS)).status_code for c in (one, two)]
            statuses += [(await c.post("/auth/token", data=GUESS)).status_code for c in (one, two)]
            assert statuses == [401] * 4
            # Each process alone has seen 2 of its 4; together they have used the budget.
            for client in (one, two):
                refused = await client.post("/auth/token", data=GUESS)
                assert refused.status_code == 429, refused.text
    finally:
        for gateway in gateways:
            gateway.stop()


async def test_redis_down_is_no_500(tmp_path: Path) -> None:
    nowhere = f"redis://:s3cret@127.0.0.1:{free_port()}/0"  # nothing listens there
    async with build_stack(tmp_path, rate_limit_storage=nowhere, login_ip_limit=2) as stack:
        statuses = [
            (await stack.client.post("/auth/token", data=GUESS)).status_code for _ in range(3)
        ]
        # Still limited, by this process alone.
        assert statuses == [401, 401, 429]
        registered = await stack.client.post(
            "/auth/register",
            json={"email": "r@example.com", "password": "correct horse", "name": "R"},
        )
        assert registered.status_code == 202
