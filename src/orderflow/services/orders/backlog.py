"""BacklogGate: submission is refused while the pipeline is too far behind, without a query per
order.

The intake's own bound (intake.py) only counts orders waiting for the API's next commit; it says
nothing about work accepted earlier and still unprocessed, which grows without bound when the
workers fall behind. The gate reads that backlog (storage's PipelineBacklog: unpublished outbox
rows plus orders in flight) in a background task every `interval` seconds, so the hot path
compares two integers and the database sees one small query per interval whatever the rate.
It refuses before an order is submitted, so an order already answered 202 is never affected.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from orderflow.ports.storage import Storage

log = structlog.get_logger()


class BacklogFullError(Exception):
    """The pipeline holds more unfinished work than its bound: refuse, the client retries."""

    def __init__(self, size: int, bound: int, retry_after: int) -> None:
        super().__init__(f"the pipeline's backlog ({size}) is past its bound ({bound})")
        self.retry_after = retry_after


class BacklogGate:
    def __init__(self, storage: Storage, bound: int, interval: float = 0.2) -> None:
        self._storage = storage
        self._bound = bound  # 0: no bound, never read
        self._interval = interval
        self.size = 0  # the last reading
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Take a first reading (so a restart into a backlog refuses at once), then keep it
        fresh in the background."""
        if not self._bound:
            return
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="backlog-gate")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def check(self) -> None:
        if self._bound and self.size > self._bound:
            # Readings come every interval; a second is long enough for one to see the drain.
            raise BacklogFullError(self.size, self._bound, retry_after=1)

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            if not self._stop.is_set():
                await self.refresh()

    async def refresh(self) -> None:
        try:
            async with self._storage.read() as reads:
                self.size = await reads.backlog.size()
        except Exception as exc:
            # The database is unreachable: the intake's commit fails on its own then, and the
            # last reading stands until one succeeds again.
            log.warning("backlog reading failed; keeping the last one", error=repr(exc))
