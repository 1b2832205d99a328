"""DeadLetterWatcher: every dead letter about an order becomes a ProcessingFailed event.

The consumer loop reports the dead letters it decides on itself, but a broker also buries a
message whose lease ran out on its last attempt (a worker that crashed or hung every time), and no
consumer sees that happen. This sweep finds those too, so an order never waits forever on a
message nobody will process: it goes to `failed`, which releases its stock and refunds it.
Each dead letter is reported once (its id is recorded in processed_messages with the event). The
sweep reads each group's dead letters a page at a time and keeps a high-water mark per group (the
position of the last one it read), so however many there are, each is read and reported; a new
watcher starts from the beginning, and the recorded ids keep what was reported from being again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog

from orderflow.domain.messages import ProcessingFailed
from orderflow.messaging.envelope import MalformedMessageError, decode, encode
from orderflow.observability import metrics
from orderflow.ports.broker import Broker, DeadLetterRecord
from orderflow.ports.storage import Storage

log = structlog.get_logger()

# Reported dead letters are recorded in processed_messages under this consumer name, by the
# sweep and by the consumer loop that decided them, so each is reported once.
REPORTED_BY = "dead-letters"


def report_key(group: str, message_id: str) -> str:
    return f"{group}:{message_id}"


class DeadLetterWatcher:
    def __init__(
        self,
        storage: Storage,
        broker: Broker,
        groups: Sequence[str],
        *,
        interval: float = 5.0,
        page_size: int = 1_000,
    ) -> None:
        self._storage = storage
        self._broker = broker
        self._groups = groups
        self._interval = interval
        self._page_size = page_size
        self._read_up_to: dict[str, int] = {}  # group -> position of the last dead letter read

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    async def sweep(self) -> int:
        """Report the dead letters not reported yet; returns how many."""
        reported = 0
        for group in self._groups:
            while True:
                after = self._read_up_to.get(group, 0)
                records = await self._broker.dead_letters(group, self._page_size, after=after)
                if not records:
                    break
                reported += await self._report(group, records)
                self._read_up_to[group] = records[-1].position
                if len(records) < self._page_size:
                    break
        return reported

    async def _report(self, group: str, records: Sequence[DeadLetterRecord]) -> int:
        """Report those of `records` not reported yet, in one transaction; returns how many."""
        keys = {report_key(group, r.message_id): r for r in records}
        async with self._storage.write() as tx:
            processed = tx.processed(REPORTED_BY)
            seen = await processed.seen(list(keys))
            new = [k for k in keys if k not in seen]
            events = []
            for key in new:
                record = keys[key]
                try:
                    message = decode(record.payload)
                except MalformedMessageError:
                    continue  # nothing to attribute it to; it stays listed for an admin
                if isinstance(message, ProcessingFailed):
                    continue  # a failure report about an unknown order: reporting it loops
                oid = message.order_id
                events.append(ProcessingFailed(oid, group, record.reason))
                log.error("dead letter", order_id=oid, group=group, reason=record.reason)
            await tx.outbox.add([encode(e) for e in events])
            await processed.mark(new)
        if events:
            metrics.dead_letter_swept(group, len(events))
        return len(events)
