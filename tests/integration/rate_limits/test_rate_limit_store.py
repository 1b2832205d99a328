"""The rate limit store (adapters/rate_limits.py) on Redis and in memory: stores on one Redis
count against one budget (per key prefix), in memory each counts alone; keys are digests; an
unreachable Redis falls back to this process's memory (logged once, never with the URL's
password) and is used again once it answers."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio as redis
from structlog.testing import capture_logs

from orderflow.adapters.rate_limits import RateLimitStore
from orderflow.ports.rate_limits import RateLimit
from tests.support.services import port_open, require_service
from tests.support.system import free_port

LIMIT = RateLimit("test", 3, 60)
URL = "redis://127.0.0.1:6379/0"


@pytest_asyncio.fixture
async def prefix() -> AsyncIterator[str]:
    require_service("redis")
    name = f"test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(URL)
    try:
        async for key in client.scan_iter(f"{name}*"):
            await client.delete(key)
    finally:
        await client.aclose()


async def test_stores_on_one_redis_share_one_budget(prefix: str) -> None:
    one, two = RateLimitStore(URL, prefix), RateLimitStore(URL, prefix)
    try:
        email = "ann@example.com"
        assert [await one.hit(LIMIT, email), await two.hit(LIMIT, email)] == [None, None]
        assert await one.hit(LIMIT, email) is None
        wait = await two.hit(LIMIT, email)
        assert wait is not None
        assert 0 < wait <= 60
        assert await one.allows(LIMIT, email) is not None
        client = redis.Redis.from_url(URL)
        keys = await client.keys(f"{prefix}*")
        await client.aclose()
        assert len(keys) == 1  # stored as a digest
        assert not any(b"ann@example.com" in key for key in keys)
        assert await one.hit(LIMIT, "someone else") is None
        await two.clear(LIMIT, email)
        assert await one.allows(LIMIT, email) is None

        # Another prefix (another test run, another deployment) is another budget.
        other = RateLimitStore(URL, f"{prefix}-other")
        for _ in range(3):
            assert await other.hit(LIMIT, "someone else") is None
        await other.aclose()
    finally:
        await one.aclose()
        await two.aclose()


async def test_stores_in_memory_count_alone() -> None:
    one, two = RateLimitStore("memory://"), RateLimitStore("memory://")
    for _ in range(3):
        assert await one.hit(LIMIT, "k") is None
    assert await one.hit(LIMIT, "k") is not None
    assert await two.hit(LIMIT, "k") is None
    await one.clear(LIMIT, "k")
    assert await one.hit(LIMIT, "k") is None


@pytest.fixture
def own_redis() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A Redis server of this test's own (so it can be stopped), with a password."""
    require_service("redis")  # the machine has Redis, so it has redis-server too
    server = shutil.which("redis-server")
    assert server is not None
    port = free_port()
    started: list[subprocess.Popen[bytes]] = []
    yield port, started
    for proc in started:
        proc.kill()
        proc.wait(10)


def _start(port: int, started: list[subprocess.Popen[bytes]]) -> None:
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--requirepass", "s3cret"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(proc)
    deadline = time.monotonic() + 20
    while not port_open("127.0.0.1", port, 0.05):
        assert proc.poll() is None, "redis-server exited"
        assert time.monotonic() < deadline, "the test's redis-server did not start"
        time.sleep(0.02)


async def test_an_unreachable_redis_falls_back_to_memory_then_recovers(
    own_redis: tuple[int, list[subprocess.Popen[bytes]]],
) -> None:
    port, started = own_redis
    _start(port, started)
    store = RateLimitStore(f"redis://:s3cret@127.0.0.1:{port}/0", "t", retry_after=0)
    try:
        with capture_logs() as logs:
            assert await store.hit(LIMIT, "k") is None
            assert await store.hit(LIMIT, "k") is None
            started[0].kill()
            started[0].wait(10)
            # Redis is gone: this process counts alone, from nothing; still limited, no error.
            answers = [await store.hit(LIMIT, "k") for _ in range(4)]
            assert answers[:3] == [None, None, None]
            assert answers[3] is not None
            _start(port, started)  # back, empty (no persistence)
            assert await store.hit(LIMIT, "k") is None
        events = [e["event"] for e in logs]
        assert events == ["rate_limit_storage_unavailable", "rate_limit_storage_recovered"]
        assert "s3cret" not in str(logs)
        assert logs[0]["log_level"] == "warning"
    finally:
        await store.aclose()
