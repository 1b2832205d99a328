"""Counting attempts against limits (logins, registrations): in the gateway process's memory,
or in a store every gateway process shares (adapters/rate_limits.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `amount` attempts per key in any `window` seconds (a moving window)."""

    name: str  # keeps one limit's counts apart from another's
    amount: int
    window: int


class RateLimits(Protocol):
    async def allows(self, limit: RateLimit, key: str) -> float | None:
        """None when one more attempt of `key` fits `limit`, else the seconds until one would.
        Counts nothing."""
        ...

    async def hit(self, limit: RateLimit, key: str) -> float | None:
        """Count an attempt of `key`: None when it fitted, else the seconds until one would
        (a refused attempt is not counted). Atomic: concurrent attempts cannot all fit."""
        ...

    async def clear(self, limit: RateLimit, key: str) -> None:
        """Forget the attempts of `key` (a successful login)."""
        ...

    async def aclose(self) -> None: ...
