"""A member of a consumer group of the embedded broker."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orderflow.adapters.broker.embedded import store
from orderflow.adapters.broker.embedded.store import Receipt
from orderflow.ports.broker import ConsumerSpec, Delivery, Outcome, Retry

if TYPE_CHECKING:
    from orderflow.adapters.broker.embedded.broker import EmbeddedBroker

# Every commit that gives a group work wakes its fetches: publishes and settles in this process
# directly, other processes' through the broker's listener, a retry delay by a timer. Polling
# is only the safety net for what nothing announces (a lease of a crashed member running out,
# a lost signal), so it starts slow and backs off further while nothing comes.
FIRST_POLL = 0.05
MAX_POLL = 0.5
# Wall-clock stamps in the file and the event loop's clock differ slightly: wake a little late
# rather than a little early.
_TIMER_SLACK = 0.005


class EmbeddedConsumer:
    def __init__(self, broker: EmbeddedBroker, spec: ConsumerSpec) -> None:
        self._broker = broker
        self._spec = spec
        # Unique across processes and hosts sharing the file, readable when inspecting leases.
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._in_flight: dict[int, tuple[Receipt, float]] = {}  # seq -> (receipt, lease_until)
        self._closed = False

    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = FIRST_POLL
        while True:
            if self._closed:
                raise RuntimeError("fetch on a closed consumer")
            # Taken before querying, so a publish racing with the query still wakes us.
            activity = self._broker.activity(self._spec.group)
            room = min(max_messages, self._spec.max_in_flight - self._count_in_flight())
            if room > 0:
                deliveries, buried = await self._lease(room)
                if deliveries:
                    return deliveries
                if buried:
                    continue  # burying a key's head may have unblocked the key's next message
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            try:
                await asyncio.wait_for(activity.wait(), min(interval, remaining))
            except TimeoutError:
                interval = min(interval * 2, MAX_POLL)

    async def settle(self, outcomes: Sequence[tuple[Delivery, Outcome]]) -> None:
        if not outcomes:
            return
        spec = self._spec
        await self._broker.run(
            store.settle, outcomes, max_attempts=spec.max_attempts, now=time.time()
        )
        for delivery, _ in outcomes:
            if isinstance(delivery.receipt, Receipt):
                self._in_flight.pop(delivery.receipt.seq, None)
        # An ack or retry may unblock a key (or free room) for any member of the group, in any
        # process; a retry's message is due again after its delay, which no commit announces.
        group = self._spec.group
        self._broker.notify(group)
        self._broker.notify_others()
        delays = [o.delay for _, o in outcomes if isinstance(o, Retry)]
        if delays:
            loop = asyncio.get_running_loop()
            loop.call_later(min(delays) + _TIMER_SLACK, self._broker.notify, group)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._broker.forget(self)
        self._count_in_flight()
        receipts = [receipt for receipt, _ in self._in_flight.values()]
        self._in_flight.clear()
        if receipts:
            await self._broker.run(store.release, receipts)
            self._broker.notify()
            self._broker.notify_others()

    async def _lease(self, room: int) -> tuple[list[Delivery], int]:
        spec = self._spec
        now = time.time()
        job = self._broker.run(
            store.lease,
            spec.group,
            self.id,
            room,
            ack_wait=spec.ack_wait,
            max_attempts=spec.max_attempts,
            now=now,
            topics=spec.topics,
            expires_after=spec.expires_after,
        )
        # If our caller is cancelled mid-query the leases still commit on the broker thread;
        # hand them straight back instead of leaving them stuck until ack_wait.
        task = asyncio.ensure_future(job)
        try:
            deliveries, buried = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._release_orphans)
            raise
        for delivery in deliveries:
            receipt = delivery.receipt
            assert isinstance(receipt, Receipt)
            self._in_flight[receipt.seq] = (receipt, now + spec.ack_wait)
        return deliveries, buried

    def _release_orphans(self, task: asyncio.Future[tuple[list[Delivery], int]]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        receipts = [d.receipt for d in task.result()[0] if isinstance(d.receipt, Receipt)]
        if receipts:
            self._broker.submit(store.release, receipts)

    def _count_in_flight(self) -> int:
        # A lease that ran out is no longer ours to count: it may already be someone else's.
        now = time.time()
        expired = [seq for seq, (_, until) in self._in_flight.items() if until <= now]
        for seq in expired:
            del self._in_flight[seq]
        return len(self._in_flight)
