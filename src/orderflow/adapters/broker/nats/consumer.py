"""A member of a consumer group on NATS JetStream.

The member keeps one pull request open on every partition consumer it is not holding a message
of (each partition consumer has max_ack_pending=1, so a request there can only be answered by the
partition's next message). Answers land in a local buffer; `fetch` hands them out up to
`max_in_flight`. Buffered messages are kept alive with +WPI so their lease starts when they are
handed out; a handed-out message whose lease ran out is forgotten here and left to the server's
redelivery, which goes to whichever member asks first, usually another one. A member that stops
hands back what it holds and counts each one in the broker's hand-back bucket: a delivery's
attempt is the server's `num_delivered` less those hand-backs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orderflow.adapters.broker.nats import topology as names
from orderflow.ports.broker import Ack, ConsumerSpec, DeadLetter, Delivery, Outcome, Retry

if TYPE_CHECKING:
    from orderflow.adapters.broker.nats.broker import NatsBroker

log = logging.getLogger(__name__)

PULL_EXPIRES = 5.0  # seconds a pull request waits on the server before it is renewed
# Our lease ends a little after the server's, so the server's redelivery finds another
# member's pull request first.
LEASE_MARGIN = 0.1


@dataclass(slots=True)
class _Partition:
    topic: str
    durable: str
    pulling_until: float = 0.0  # monotonic deadline of the open pull request, 0 if none
    holding: bool = False  # a message of this partition is buffered or handed out here


@dataclass(slots=True)
class _Receipt:
    index: int  # partition index
    msg: Any  # nats.aio.msg.Msg
    lease_until: float = field(default=0.0)
    hand_backs: int = 0  # deliveries of it handed back unprocessed, as of its handing out


class NatsConsumer:
    def __init__(self, broker: NatsBroker, spec: ConsumerSpec) -> None:
        self._broker = broker
        self._spec = spec
        topo = broker.topology
        self._partitions = [
            _Partition(topic, topo.durable(spec.group, topic, n))
            for topic in spec.topics
            for n in range(topo.partitions)
        ]
        self._by_subject = {
            topo.partition_subject(topic, n): i
            for i, (topic, n) in enumerate(
                (topic, n) for topic in spec.topics for n in range(topo.partitions)
            )
        }
        self._ready: deque[_Receipt] = deque()
        self._handed: dict[int, _Receipt] = {}  # id(receipt) -> receipt
        self._wake = asyncio.Event()
        self._inbox = ""
        self._sub: Any = None
        self._keeper: asyncio.Task[None] | None = None
        self._closed = False
        self._reconnects = 0

    async def start(self) -> None:
        nc = self._broker.client
        self._reconnects = nc.stats["reconnects"]
        self._inbox = nc.new_inbox()
        self._sub = await nc.subscribe(f"{self._inbox}.*", cb=self._on_message)
        self._keeper = asyncio.create_task(self._keep(), name=f"nats-consumer-{self._spec.group}")
        await self._pump()

    # -- receiving -------------------------------------------------------------------------

    async def _on_message(self, msg: Any) -> None:
        status = (msg.headers or {}).get("Status")
        # Status answers come on our reply subject, messages keep their stream subject.
        index = self._by_subject.get(msg.subject)
        if index is None:
            index = int(msg.subject.rsplit(".", 1)[1])
        part = self._partitions[index]
        if status is not None:
            if status != "100":  # anything but a heartbeat ends the request (408 expired, 409)
                part.pulling_until = 0.0
                if status == "409":
                    log.warning("pull on %s refused: %s", part.durable, msg.headers)
                else:
                    await self._pump()
            return
        part.pulling_until = 0.0
        if self._closed:
            await self._hand_back(_Receipt(index, msg))
            return
        part.holding = True
        self._ready.append(_Receipt(index, msg))
        self._wake.set()

    async def _pump(self) -> None:
        """Open a pull request on every partition that has none and holds nothing here."""
        if self._closed or not self._broker.client.is_connected:
            return
        now = time.monotonic()
        stream = self._broker.topology.stream
        request = json.dumps({"batch": 1, "expires": int(PULL_EXPIRES * 1e9)}).encode()
        for index, part in enumerate(self._partitions):
            if part.holding or part.pulling_until > now:
                continue
            part.pulling_until = now + PULL_EXPIRES + 1.0
            await self._broker.client.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{part.durable}",
                request,
                reply=f"{self._inbox}.{index}",
            )

    async def _keep(self) -> None:
        """Expire leases, keep buffered messages alive, renew lost pull requests."""
        interval = max(0.05, min(self._spec.ack_wait / 4, 1.0))
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                reconnects = self._broker.client.stats["reconnects"]
                if reconnects != self._reconnects:
                    # Pull requests died with the old connection: ask again everywhere.
                    self._reconnects = reconnects
                    for part in self._partitions:
                        part.pulling_until = 0.0
                self._expire_leases()
                for receipt in list(self._ready):
                    await receipt.msg.in_progress()
                await self._pump()
            except Exception:  # a disconnect must not end the member; the client reconnects
                log.exception("NATS consumer upkeep failed")

    def _expire_leases(self) -> None:
        now = time.monotonic()
        for key, receipt in list(self._handed.items()):
            if receipt.lease_until <= now:
                # The server redelivers it; a late settle of this delivery is ignored.
                del self._handed[key]
                self._partitions[receipt.index].holding = False

    # -- the Consumer port -----------------------------------------------------------------

    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self._closed:
            raise RuntimeError("fetch on a closed consumer")
        deadline = time.monotonic() + timeout
        while True:
            self._expire_leases()
            out = await self._take(max_messages)
            if out:
                return out
            await self._pump()
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(left, 0.25))

    async def _take(self, max_messages: int) -> list[Delivery]:
        spec = self._spec
        out: list[Delivery] = []
        if len(self._ready) > 1:
            # Partitions answer in any order; hand out in publish order where we can.
            self._ready = deque(sorted(self._ready, key=_stream_seq))
        while self._ready and len(out) < max_messages and len(self._handed) < spec.max_in_flight:
            receipt = self._ready.popleft()
            replay_for = (receipt.msg.headers or {}).get(names.REPLAY_FOR)
            if replay_for is not None and replay_for != spec.group:
                await receipt.msg.ack()  # another group's dead letter, replayed for it alone
                self._partitions[receipt.index].holding = False
                continue
            attempt = await self._attempt(receipt)
            if attempt > spec.max_attempts:
                # Its last lease ran out (the consumer crashed on it every time).
                reason = f"lease expired on each of {spec.max_attempts} attempts"
                await self._dead_letter(receipt, reason, spec.max_attempts)
                continue
            receipt.lease_until = time.monotonic() + spec.ack_wait + LEASE_MARGIN
            self._handed[id(receipt)] = receipt
            out.append(self._delivery(receipt, attempt))
        return out

    async def _attempt(self, receipt: _Receipt) -> int:
        delivered = int(receipt.msg.metadata.num_delivered)
        if delivered > 1:  # only a redelivery can have been handed back before
            receipt.hand_backs = await self._broker.hand_backs(self._hand_back_key(receipt))
        return max(1, delivered - receipt.hand_backs)

    def _hand_back_key(self, receipt: _Receipt) -> str:
        durable = self._partitions[receipt.index].durable
        return self._broker.topology.hand_back_key(durable, _stream_seq(receipt))

    async def _hand_back(self, receipt: _Receipt) -> None:
        """Return a delivery no handler settled; the server's redelivery is no new attempt."""
        await self._broker.add_hand_back(self._hand_back_key(receipt))
        await receipt.msg.nak()

    async def _done(self, receipt: _Receipt) -> None:
        if receipt.hand_backs:
            await self._broker.forget_hand_backs(self._hand_back_key(receipt))

    def _delivery(self, receipt: _Receipt, attempt: int) -> Delivery:
        headers = dict(receipt.msg.headers or {})
        return Delivery(
            topic=self._partitions[receipt.index].topic,
            key=headers.get(names.KEY, ""),
            message_id=headers.get(names.MESSAGE_ID, ""),
            payload=receipt.msg.data,
            attempt=attempt,
            headers={k: v for k, v in headers.items() if k not in names.RESERVED},
            receipt=receipt,
        )

    async def settle(self, outcomes: Sequence[tuple[Delivery, Outcome]]) -> None:
        for delivery, outcome in outcomes:
            receipt = delivery.receipt
            if not isinstance(receipt, _Receipt) or self._handed.pop(id(receipt), None) is None:
                continue  # settled already, or its lease ran out and it went to another member
            if isinstance(outcome, Ack):
                await receipt.msg.ack()
                await self._done(receipt)
            elif isinstance(outcome, Retry):
                if delivery.attempt >= self._spec.max_attempts:
                    reason = f"still failing after {delivery.attempt} attempts"
                    await self._dead_letter(receipt, reason, delivery.attempt)
                else:
                    await receipt.msg.nak(delay=outcome.delay if outcome.delay > 0 else None)
            elif isinstance(outcome, DeadLetter):
                await self._dead_letter(receipt, outcome.reason, delivery.attempt)
            self._partitions[receipt.index].holding = False
        await self._pump()

    async def _dead_letter(self, receipt: _Receipt, reason: str, attempts: int) -> None:
        part = self._partitions[receipt.index]
        await self._broker.bury(self._spec.group, part.topic, receipt.msg, reason, attempts)
        await receipt.msg.term()
        await self._done(receipt)
        part.holding = False

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        # A graceful stop hands its messages back at once instead of after ack_wait, and not
        # as a failed attempt: no handler settled them.
        with contextlib.suppress(Exception):
            for receipt in [*self._ready, *self._handed.values()]:
                await self._hand_back(receipt)
            if self._sub is not None:
                await self._sub.unsubscribe()
        self._ready.clear()
        self._handed.clear()


def _stream_seq(receipt: _Receipt) -> int:
    return int(receipt.msg.metadata.sequence.stream)
