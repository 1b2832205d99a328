"""ProcessedPruner: forgets which messages were applied once no broker can bring them back.

processed_messages gains about six rows per order. An id is only needed while a duplicate of its
message can still arrive, and the longest-lived copy is a message kept in a broker's stream (NATS
keeps acknowledged messages 7 days, and a consumer created again reads them anew), so ids older
than the retention (8 days by default) go. The dead-letter sweep's ids stay: its dead letters are
listed until an admin acts on them, and each must be reported only once.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import structlog

from orderflow.ports.storage import Storage
from orderflow.services.runtime.dead_letters import REPORTED_BY

log = structlog.get_logger()


class ProcessedPruner:
    def __init__(self, storage: Storage, retention: float, *, chunk: int = 5_000) -> None:
        self._storage = storage
        self._retention = timedelta(seconds=retention)
        # Often enough that a sweep finds a fraction of the retention's worth of rows, at most
        # hourly so an idle system stays idle.
        self._interval = min(retention / 4, 3600.0)
        self._chunk = chunk

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sweep(stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    async def sweep(self, stop: asyncio.Event | None = None) -> int:
        """Delete expired ids a chunk per transaction; returns how many."""
        before = datetime.now(UTC) - self._retention
        total = 0
        while stop is None or not stop.is_set():
            async with self._storage.write() as tx:
                deleted = await tx.retention.prune(before, keep=(REPORTED_BY,), limit=self._chunk)
            total += deleted
            if deleted < self._chunk:
                break
        if total:
            log.info("pruned processed message ids", count=total, before=before.isoformat())
        return total
