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

from orderflow.observability import metrics
from orderflow.ports.broker import Broker
from orderflow.ports.storage import Storage
from orderflow.ports.wakeup import OUTBOX, NoWakeup, Wakeup
from orderflow.services.runtime.retrying import STOPPED, retry_until_stopped

log = structlog.get_logger()

DEPTH_CAP = 1_000_000


class OutboxRelay:
    def __init__(
        self,
        storage: Storage,
        broker: Broker,
        *,
        batch_size: int = 500,
        wakeup: Wakeup | None = None,
        safety_poll: float = 1.0,
    ) -> None:
        self._storage = storage
        self._broker = broker
        self._batch_size = batch_size
        # Writers in this process call wake(); writers in other processes (the API) signal the
        # OUTBOX channel after their commit. Polling is only the safety net for a lost signal.
        self._signals: Wakeup = wakeup or NoWakeup()
        self._safety_poll = safety_poll
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Called by writers in this process after a commit, so they need not wait for a poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("relay started")
        listener = asyncio.create_task(self._listen(), name="relay-wakeups")
        try:
            while not stop.is_set():
                # Cleared before reading, so a commit racing with the read still wakes us.
                self._wakeup.clear()
                published = await retry_until_stopped(
                    self.publish_batch, stop, event="relay publish failed; will retry"
                )
                if published is STOPPED:
                    break
                if published:
                    metrics.relayed(published)
                if published < self._batch_size:
                    await _first_of(self._wakeup, stop, self._safety_poll)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        log.info("relay stopped")

    async def _listen(self) -> None:
        while True:
            if await self._signals.wait(OUTBOX, self._safety_poll):
                self.wake()

    async def sample_depth(self) -> None:
        """For the metrics, before a scrape: the outbox's depth, up to a million rows."""
        async with self._storage.read() as reads:
            metrics.outbox_depth(await reads.outbox.depth(DEPTH_CAP))

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


async def _first_of(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    """Wait until either event is set, or `timeout` seconds."""
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
