"""Sliding-window rate limits kept in memory (per gateway process), keyed by IP or account."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from orderflow.web.problems import ProblemError


class RateLimiter:
    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> float | None:
        """Seconds until `key` may try again, or None when it is under its limit."""
        hits = self._hits.get(key)
        if hits is None:
            return None
        now = self._clock()
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        if len(hits) < self._limit:
            return None
        return hits[0] + self._window - now

    def hit(self, key: str) -> None:
        if len(self._hits) >= self._max_keys:
            self._sweep()
        self._hits.setdefault(key, deque()).append(self._clock())

    def check_and_hit(self, key: str) -> float | None:
        wait = self.retry_after(key)
        if wait is None:
            self.hit(key)
        return wait

    def forgive(self, key: str) -> None:
        """Take back the latest hit (a reserved attempt that turned out to be legitimate)."""
        hits = self._hits.get(key)
        if hits:
            hits.pop()

    def _sweep(self) -> None:
        # Under a flood of distinct keys, forget idle ones first, then the oldest half.
        cutoff = self._clock() - self._window
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= cutoff]:
            del self._hits[key]
        if len(self._hits) >= self._max_keys:
            for key in list(self._hits)[: self._max_keys // 2]:
                del self._hits[key]


def too_many_requests(wait: float) -> ProblemError:
    seconds = max(1, math.ceil(wait))
    return ProblemError(
        429,
        detail=f"too many attempts; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )
