"""The catalog as the API prices from it: cached in memory, refreshed when stale or on a miss."""

from __future__ import annotations

import time
from collections.abc import Iterable

from orderflow.domain.pricing import CatalogEntry
from orderflow.ports.storage import Storage


class CatalogCache:
    def __init__(
        self, storage: Storage, ttl: float = 5.0, miss_refresh_interval: float = 1.0
    ) -> None:
        self._storage = storage
        self._ttl = ttl
        self._miss_interval = miss_refresh_interval
        self._entries: dict[str, CatalogEntry] = {}
        self._loaded_at = float("-inf")

    async def entries(self, skus: Iterable[str]) -> dict[str, CatalogEntry]:
        now = time.monotonic()
        stale = now - self._loaded_at > self._ttl
        # A sku we do not know may have been added since the last load; but a stream of bogus
        # skus must not turn every request into a catalog query.
        missing = any(s not in self._entries for s in skus)
        if stale or (missing and now - self._loaded_at > self._miss_interval):
            await self.refresh()
        return self._entries

    async def refresh(self) -> None:
        async with self._storage.read() as reads:
            self._entries = await reads.catalog.entries()
        self._loaded_at = time.monotonic()
