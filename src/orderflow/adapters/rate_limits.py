"""The `RateLimits` port on the `limits` library: moving windows in this process's memory
(`memory://`, the embedded default) or in Redis (`redis://`, `rediss://`), where every gateway
process counts against the same budget.

Keys are stored as digests (they hold emails and IP addresses), under a prefix of their own.

When Redis cannot be reached the limits fall back to this process's memory rather than failing
open (no limit at all would let a guesser through exactly while Redis is down) or closed (a
Redis outage would become a login outage): each process then counts on its own, so the budget
is per process until Redis answers again. The outage is logged once, its end once; Redis is
tried again every `retry_after` seconds, so a request waits for it at most once per interval.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from orderflow.adapters.urls import redact_url
from orderflow.ports.rate_limits import RateLimit

log = structlog.get_logger("orderflow.gateway.rate_limits")

SCHEMES = ("memory", "redis", "rediss")
T = TypeVar("T")


class _MemoryStorage(MemoryStorage):
    """limits' in-process storage, but clear() empties a key's moving window instead of
    removing it: removing races the storage's own expiry task, which then dies of a KeyError
    (limits 5.8). The expiry task removes the emptied key itself."""

    async def clear(self, key: str) -> None:
        async with self.locks[key]:
            self.events[key] = []
            self.storage.pop(key, None)
            self.expirations.pop(key, None)


class RateLimitStore:
    def __init__(
        self,
        url: str,
        prefix: str = "orderflow",
        retry_after: float = 5.0,
        timeout: float = 0.5,
    ) -> None:
        scheme = url.partition("://")[0]
        if scheme not in SCHEMES:
            raise ValueError(f"a rate limit storage URL starts with one of {SCHEMES}")
        self._shown = redact_url(url)
        self._fallback = MovingWindowRateLimiter(_MemoryStorage())
        self._pool: Any = None
        self._shared: MovingWindowRateLimiter | None = None
        if scheme != "memory":
            try:
                from redis.asyncio import ConnectionPool
            except ImportError as exc:
                raise ImportError(
                    "Redis rate limits need the redis client: pip install 'orderflow[redis]'"
                ) from exc

            # Short timeouts: a login must not hang on an unreachable Redis.
            self._pool = ConnectionPool.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            storage = RedisStorage(
                f"async+{url}",
                implementation="redispy",
                key_prefix=f"{prefix}:ratelimit",
                wrap_exceptions=True,
                connection_pool=self._pool,
            )
            self._shared = MovingWindowRateLimiter(storage)
        self._retry_after = retry_after
        self._down_until: float | None = None  # monotonic time to try Redis again

    async def allows(self, limit: RateLimit, key: str) -> float | None:
        async def ask(limiter: MovingWindowRateLimiter) -> float | None:
            item, digest = _item(limit), _digest(key)
            if await limiter.test(item, digest):
                return None
            return await _wait(limiter, item, digest)

        return await self._call(ask)

    async def hit(self, limit: RateLimit, key: str) -> float | None:
        async def count(limiter: MovingWindowRateLimiter) -> float | None:
            item, digest = _item(limit), _digest(key)
            if await limiter.hit(item, digest):
                return None
            return await _wait(limiter, item, digest)

        return await self._call(count)

    async def clear(self, limit: RateLimit, key: str) -> None:
        async def forget(limiter: MovingWindowRateLimiter) -> None:
            await limiter.clear(_item(limit), _digest(key))

        await self._call(forget)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def _call(self, operation: Callable[[MovingWindowRateLimiter], Awaitable[T]]) -> T:
        if self._shared is None or self._down():
            return await operation(self._fallback)
        try:
            result = await operation(self._shared)
        except Exception as exc:  # any failure of the store: its client raises many kinds
            if self._down_until is None:
                log.warning(
                    "rate_limit_storage_unavailable",
                    storage=self._shown,
                    error=type(exc).__name__,
                    meanwhile="limits counted in this process only",
                )
            self._down_until = time.monotonic() + self._retry_after
            return await operation(self._fallback)
        if self._down_until is not None:
            self._down_until = None
            log.info("rate_limit_storage_recovered", storage=self._shown)
        return result

    def _down(self) -> bool:
        return self._down_until is not None and time.monotonic() < self._down_until


def _item(limit: RateLimit) -> RateLimitItemPerSecond:
    return RateLimitItemPerSecond(limit.amount, limit.window, namespace=limit.name)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


async def _wait(limiter: MovingWindowRateLimiter, item: RateLimitItemPerSecond, key: str) -> float:
    stats = await limiter.get_window_stats(item, key)
    return max(0.0, stats.reset_time - time.time())
