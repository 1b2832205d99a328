"""Completion tracking: which accepted orders reached a final status, and when each stage happened.

Everything comes from the orders' own timelines (`GET /api/v1/orders/{id}`, server timestamps),
so how often the bench looks does not change the figures. During the run a probe reads about one
order per `probe_interval` to estimate progress (orders finish roughly first in, first out, so it
gallops forward from the last finished one); the full read happens once the newest orders have
finished, after the load, when it can no longer compete with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from orderflow.domain.order import SETTLED_STATUSES
from orderflow.tools.bench.customers import Customer
from orderflow.tools.bench.samples import Sample

FINAL = frozenset(s.value for s in SETTLED_STATUSES)


@dataclass(frozen=True)
class OrderRecord:
    """One accepted order as the server tells it: its final status and the wall-clock time
    (seconds since the epoch) of its creation and of the first entry of each status."""

    order_id: str
    status: str
    created: float
    reached: dict[str, float]

    @property
    def finished(self) -> float:
        return self.reached[self.status]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> OrderRecord:
        reached: dict[str, float] = {}
        for entry in doc.get("timeline") or []:
            reached.setdefault(entry["status"], _ts(entry["at"]))
        return cls(doc["id"], doc["status"], _ts(doc["created_at"]), reached)


class CompletionTracker:
    def __init__(
        self,
        client: aiohttp.ClientSession,
        customers: list[Customer],
        accepted: list[Sample],
        concurrency: int = 16,
    ) -> None:
        self._client = client
        self._customers = customers
        self._gate = asyncio.Semaphore(concurrency)
        self.accepted = accepted  # in acceptance order; the load appends to it as it runs
        self.finished_estimate = 0

    async def probe(self, stop: asyncio.Event, interval: float = 0.25) -> None:
        """Estimate how many accepted orders finished, reading one order per `interval`."""
        step = 1
        while not stop.is_set():
            if self.finished_estimate < len(self.accepted):
                at = min(len(self.accepted), self.finished_estimate + step) - 1
                doc = await self._read(self.accepted[at])
                if doc is not None and doc["status"] in FINAL:
                    self.finished_estimate, step = at + 1, step * 2
                else:
                    step = max(1, step // 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def collect(self, timeout: float) -> tuple[list[OrderRecord], list[str]]:
        """Wait (up to `timeout`) for the newest orders to finish, then read every order's
        timeline, re-reading the unfinished ones until they finish or the time is up.
        Returns the records of finished orders and the ids of those still unfinished."""
        deadline = time.monotonic() + timeout
        newest = self.accepted[-20:]
        while newest and time.monotonic() < deadline:
            docs = await asyncio.gather(*(self._read(s) for s in newest))
            if all(d is not None and d["status"] in FINAL for d in docs):
                break
            await asyncio.sleep(0.2)
        records: dict[str, OrderRecord] = {}
        pending = list(self.accepted)
        while pending:
            docs = await asyncio.gather(*(self._read(s) for s in pending))
            still = []
            for sample, doc in zip(pending, docs, strict=True):
                if doc is not None and doc["status"] in FINAL:
                    records[doc["id"]] = OrderRecord.from_json(doc)
                else:
                    still.append(sample)
            self.finished_estimate = len(records)
            pending = still
            if not pending or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.5)
        return list(records.values()), [str(s.order_id) for s in pending]

    async def _read(self, sample: Sample) -> dict[str, Any] | None:
        headers = self._customers[sample.customer].headers
        async with self._gate:
            try:
                url = f"/api/v1/orders/{sample.order_id}"
                async with self._client.get(url, headers=headers) as response:
                    if response.status != 200:
                        await response.read()
                        return None
                    doc: dict[str, Any] = await response.json()
                    return doc
            except (aiohttp.ClientError, TimeoutError):
                return None


def _ts(value: object) -> float:
    return datetime.fromisoformat(str(value)).timestamp()
