"""OutboxRelay: publishes committed outbox rows to the broker in batches, then deletes them.

If the broker is down the rows stay and are published later; a crash between publish and delete
publishes them again, which the broker's dedup by message id (and consumer idempotency) absorbs.

Several relays may run against one PostgreSQL database: each claims its batch with
`FOR UPDATE SKIP LOCKED` in the transaction that deletes it after publishing, so relays split the
outbox instead of racing for the same rows (a relay that dies mid-batch releases its locks with
its connection, and another takes the rows). Per-order order survives: a message is only written
after the one that caused it was consumed, hence published, so two rows of one order in the
outbox at once are concurrent anyway. On SQLite (one machine) the batch is read, published and
deleted in separate steps, so writers are not held up while the broker confirms.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from orderflow.ports.broker import Broker
from orderflow.ports.storage import Storage
from orderflow.services.runtime.retrying import STOPPED, retry_until_stopped

log = structlog.get_logger()


class OutboxRelay:
    def __init__(
        self,
        storage: Storage,
        broker: Broker,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.02,
        idle_poll_interval: float = 0.2,
    ) -> None:
        self._storage = storage
        self._broker = broker
        self._batch_size = batch_size
        # Rows written by other processes (the API) are found by polling: often while orders
        # flow, rarely once the outbox has been empty for a while.
        self._poll = (poll_interval, idle_poll_interval)
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Called by writers in this process after a commit, so they need not wait for a poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("relay started")
        poll = self._poll[0]
        while not stop.is_set():
            published = await retry_until_stopped(
                self.publish_batch, stop, event="relay publish failed; will retry"
            )
            if published is STOPPED:
                break
            poll = self._poll[0] if published else min(poll * 1.25, self._poll[1])
            if published < self._batch_size:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), poll)
        log.info("relay stopped")

    async def publish_batch(self) -> int:
        if self._storage.claims_rows:
            async with self._storage.write() as tx:
                outbox = tx.outbox
                claimed = await outbox.oldest(self._batch_size, claim=True)
                if claimed:
                    await self._broker.publish([row.message for row in claimed])
                    await outbox.remove([row.id for row in claimed])
            return len(claimed)
        async with self._storage.read() as reads:
            rows = await reads.outbox.oldest(self._batch_size)
        if not rows:
            return 0
        await self._broker.publish([row.message for row in rows])
        async with self._storage.write() as tx:
            await tx.outbox.remove([row.id for row in rows])
        return len(rows)
