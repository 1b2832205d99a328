"""A member of a consumer group on RabbitMQ.

Each member has its own connection and owns some of the group's shards (see `topology`): its
share is ceil(shards / members), members counted by the consumers on the group's members queue.
A member over its share stops handing out from a shard, waits until nothing of it is unsettled
and gives it up; a member under it claims shards that have no consumer, and any member claims a
consumerless shard with messages waiting (an orphan). A shard's messages reach its owner in queue
order, and `fetch` hands out a key's next message only once the earlier one is settled.

Retry(delay) keeps the message unacked at its key's head here and hands it out again after the
delay; attempts are the queue's delivery count + 1 + these local retries. (A nack would let the
message overtake nothing here, but a crash returns unacked messages in first-delivery order, and
a nacked-and-redelivered head would then come back behind its key's later messages.) A member
that dies loses the local retry count; the queue's count still grows, and a backstop delivery
limit ends any crash loop. A lease that runs out gives the whole shard up, its messages handed
back in queue order and counted, so another member can take it, as if this one had crashed; the
last attempt's lease instead ends in the dead letters.
Hand-backs: the queue counts every return, also those of messages no handler settled (a member
stopping or giving a shard up hands back what it prefetched or held). The owner counts those per
message in the shard's ledger queue, whose newest entry it reads on claiming the shard (keeping
the entries unacked until it writes the next one, so a crash loses no count), and subtracts them:
an attempt is a delivery that reached a handler, so restarting or scaling workers with a backlog
dead-letters nothing.
Dedup: the owner drops a first delivery whose (topic, message id) it already saw on that shard;
a new owner starts with an empty memory, so dedup spans one ownership, not a fixed window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiormq.exceptions import AMQPError, ChannelAccessRefused

from orderflow.adapters.broker.rabbitmq import topology as names
from orderflow.ports.broker import Ack, ConsumerSpec, DeadLetter, Delivery, Outcome, Retry

if TYPE_CHECKING:
    from orderflow.adapters.broker.rabbitmq.broker import RabbitMqBroker

log = logging.getLogger(__name__)

TICK = 0.2  # seconds between lease checks and rebalancing
RELEASE_COOLDOWN = 1.0  # a member does not take back a shard it just gave up for this long
SEEN_PER_SHARD = 10_000  # message ids remembered per shard for dedup
PREFETCH_MAX = 100
CLOSE_TIMEOUT = 5.0  # seconds to give a shard up gracefully on close
CONSUMER_CHECK = 2.0  # seconds between checks that an owned shard still has our consumer


def header_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def connection_open(connection: Any) -> bool:
    """Whether the AMQP connection still works. aio-pika's own `is_closed` only turns True on
    `close()`; when the broker goes away (a restart) only the underlying connection knows."""
    if connection is None or connection.is_closed:
        return False
    transport = connection.transport
    return transport is not None and not transport.connection.is_closed


async def _ignore_message(message: Any) -> None:
    pass


@dataclass(eq=False, slots=True)
class _Shard:
    index: int
    lock: Any  # channel whose exclusive consumer is the claim
    work: Any  # channel consuming the shard queue
    queue: Any = None
    consumer_tag: str = ""
    draining: bool = False
    check_at: float = field(default_factory=lambda: time.monotonic() + CONSUMER_CHECK)
    seen: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)
    # "topic/message id" -> returns no handler saw, and the ledger entries they were read from
    hand_backs: dict[str, int] = field(default_factory=dict)
    ledger: list[Any] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Receipt:
    shard: _Shard
    message: Any  # aio_pika.IncomingMessage
    topic: str
    key: str
    message_id: str
    delivered: int  # deliveries the queue counted before this one
    retries: int = 0  # Retry outcomes handled here, without the queue
    not_before: float = 0.0  # a retry's delay ends
    lease_until: float = 0.0

    @property
    def ledger_key(self) -> str:
        return f"{self.topic}/{self.message_id}"

    @property
    def attempt(self) -> int:
        unseen = self.shard.hand_backs.get(self.ledger_key, 0)
        return max(1, self.delivered - unseen + 1 + self.retries)

    @property
    def tag(self) -> int:
        return int(self.message.delivery_tag)


class RabbitMqConsumer:
    def __init__(self, broker: RabbitMqBroker, spec: ConsumerSpec) -> None:
        self._broker = broker
        self._spec = spec
        self._topo = broker.topology
        self._conn: Any = None
        self._presence: Any = None
        self._probe: Any = None  # passive declares; kept apart so a failure hurts nothing else
        self._owned: dict[int, _Shard] = {}
        self._buffer: list[_Receipt] = []
        self._handed: dict[int, _Receipt] = {}  # id(receipt) -> receipt
        self._cooldown: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        await self._join()
        await self._rebalance()
        self._task = asyncio.create_task(self._run(), name=f"rabbitmq-member-{self._spec.group}")

    async def _join(self) -> None:
        """A fresh connection with its presence and probe channels, all or nothing: a join that
        fails halfway (the broker still starting) is retried whole on the next tick, instead of
        leaving an open connection with dead channels that nothing would notice."""
        # Whatever the old connection held went back to the queues when it died.
        self._owned.clear()
        self._buffer.clear()
        self._handed.clear()
        old, self._conn = self._conn, None
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.close(), 2.0)
        conn = await self._broker.connect_member()
        try:
            probe = await conn.channel()
            presence = await conn.channel()
            members = await presence.declare_queue(
                self._topo.members_queue(self._spec.group),
                durable=False,
                auto_delete=False,
                arguments=names.expiry_arguments(self._spec) or None,
            )
            await members.consume(_ignore_message, no_ack=True)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        self._conn, self._probe, self._presence = conn, probe, presence

    async def _run(self) -> None:
        while not self._closed:
            await asyncio.sleep(TICK)
            try:
                if not connection_open(self._conn):
                    log.warning("RabbitMQ member of %s reconnecting", self._spec.group)
                    await self._join()
                if self._probe.is_closed:
                    self._probe = await self._conn.channel()
                await self._drop_dead_shards()
                await self._expire_leases()
                await self._rebalance()
            except Exception:  # a lost connection must not end the member: retry next tick
                log.exception("RabbitMQ member upkeep failed")

    # -- shard ownership -------------------------------------------------------------------

    async def _drop_dead_shards(self) -> None:
        """Give up shards whose channel the broker closed, or whose consumer it cancelled (a
        queue restarting), while the connection stayed up: owning a shard that delivers
        nothing would hold its lock, so nobody would take its messages, silently, for ever."""
        for shard in list(self._owned.values()):
            dead = shard.work.is_closed or shard.lock.is_closed
            if not dead and time.monotonic() >= shard.check_at:
                shard.check_at = time.monotonic() + CONSUMER_CHECK
                queue = await self._probe.declare_queue(
                    self._topo.shard_queue(self._spec.group, shard.index), passive=True
                )
                dead = queue.declaration_result.consumer_count == 0
            if dead:
                log.warning("RabbitMQ member of %s lost shard %d", self._spec.group, shard.index)
                await self._release(shard, 0.0)

    async def _rebalance(self) -> None:
        group = self._spec.group
        members = await self._probe.declare_queue(self._topo.members_queue(group), passive=True)
        shards = self._topo.partitions
        cap = -(-shards // max(1, members.declaration_result.consumer_count))
        keep = [s for s in self._owned.values() if not s.draining]
        for shard in sorted(keep, key=self._busy)[: max(0, len(keep) - cap)]:
            shard.draining = True
        for shard in list(self._owned.values()):
            if shard.draining and not self._busy(shard):
                await self._release(shard, RELEASE_COOLDOWN)
        now = time.monotonic()
        free = [n for n in range(shards) if n not in self._owned]
        random.shuffle(free)
        for index in free:
            if self._cooldown.get(index, 0.0) > now:
                continue
            queue = await self._probe.declare_queue(
                self._topo.shard_queue(group, index), passive=True
            )
            result = queue.declaration_result
            # Up to our share; beyond it only to rescue a shard whose messages nobody takes
            # (its owner gave it up, e.g. after a lease ran out; we give another one up later).
            if result.consumer_count == 0 and (len(self._owned) < cap or result.message_count):
                await self._claim(index)

    def _busy(self, shard: _Shard) -> int:
        handed = sum(r.shard is shard for r in self._handed.values())
        return handed + sum(r.shard is shard and r.retries > 0 for r in self._buffer)

    async def _claim(self, index: int) -> bool:
        lock = await self._conn.channel()
        try:
            queue = await lock.declare_queue(
                self._topo.lock_queue(self._spec.group, index),
                durable=False,
                auto_delete=False,
                arguments=names.expiry_arguments(self._spec) or None,
            )
            await queue.consume(_ignore_message, no_ack=True, exclusive=True)
        except ChannelAccessRefused:
            return False  # another member holds it (the refusal closed the channel)
        hand_backs, ledger = await self._read_ledger(lock, index)
        # From here on, all or nothing: a lock held without a working consumer (the consume
        # failed while the broker was still starting) would strand the shard's messages.
        work: Any = None
        shard: _Shard | None = None
        try:
            work = await self._conn.channel()
            await work.set_qos(prefetch_count=max(1, min(self._spec.max_in_flight, PREFETCH_MAX)))
            shard = _Shard(index, lock, work, hand_backs=hand_backs, ledger=ledger)
            self._owned[index] = shard
            queue = await work.get_queue(
                self._topo.shard_queue(self._spec.group, index), ensure=False
            )
            claimed = shard

            async def on_message(message: Any) -> None:
                await self._on_message(claimed, message)

            shard.queue = queue
            shard.consumer_tag = await queue.consume(on_message)
        except BaseException:
            if shard is not None and self._owned.get(index) is shard:
                del self._owned[index]
                self._buffer = [r for r in self._buffer if r.shard is not shard]
            for channel in (work, lock):
                if channel is not None:
                    with contextlib.suppress(Exception):
                        await channel.close()
            raise
        return True

    async def _read_ledger(self, lock: Any, index: int) -> tuple[dict[str, int], list[Any]]:
        """The shard's hand-back counts; the entries stay unacked on the lock channel."""
        queue = await lock.declare_queue(
            self._topo.hand_backs_queue(self._spec.group, index),
            durable=True,
            auto_delete=False,
            arguments=names.expiry_arguments(self._spec) or None,
        )
        counts: dict[str, int] = {}
        entries: list[Any] = []
        while (entry := await queue.get(no_ack=False, fail=False)) is not None:
            entries.append(entry)
            # Entries left by a crash before their successor's were acked: each is a full
            # snapshot, so the largest count is the true one.
            for key, n in json.loads(entry.body).items():
                counts[key] = max(counts.get(key, 0), int(n))
        return counts, entries

    async def _write_ledger(self, shard: _Shard, returned: Sequence[_Receipt]) -> None:
        for receipt in returned:
            shard.hand_backs[receipt.ledger_key] = shard.hand_backs.get(receipt.ledger_key, 0) + 1
        while len(shard.hand_backs) > SEEN_PER_SHARD:
            del shard.hand_backs[next(iter(shard.hand_backs))]
        if not returned and not shard.ledger:
            return
        queue = self._topo.hand_backs_queue(self._spec.group, shard.index)
        if shard.hand_backs:
            await self._broker.record_hand_backs(queue, shard.hand_backs)
        for entry in shard.ledger:
            await entry.ack()
        shard.ledger = []

    async def _release(
        self, shard: _Shard, cooldown: float, failed: _Receipt | None = None
    ) -> None:
        """Give a shard up, handing back what it holds; only `failed` (its lease ran out) counts
        as an attempt."""
        if self._owned.get(shard.index) is not shard:
            return
        del self._owned[shard.index]
        unacked = [r for r in [*self._handed.values(), *self._buffer] if r.shard is shard]
        self._buffer = [r for r in self._buffer if r.shard is not shard]
        self._handed = {k: r for k, r in self._handed.items() if r.shard is not shard}
        self._cooldown[shard.index] = time.monotonic() + cooldown
        with contextlib.suppress(AMQPError, RuntimeError):
            # Stop deliveries, then hand back in first-delivery (= queue) order, so the next
            # owner sees each key's messages in order; only then let it in (the lock).
            await shard.queue.cancel(shard.consumer_tag)
            if not shard.lock.is_closed:  # else the ledger entries went back by themselves
                await self._write_ledger(shard, [r for r in unacked if r is not failed])
            for receipt in sorted(unacked, key=lambda r: r.tag):
                await receipt.message.nack(requeue=True)
        for channel in (shard.work, shard.lock):
            with contextlib.suppress(AMQPError, RuntimeError):
                await channel.close()

    # -- receiving -------------------------------------------------------------------------

    async def _on_message(self, shard: _Shard, message: Any) -> None:
        if self._owned.get(shard.index) is not shard:
            return  # released: closing the channel returns it
        headers = message.headers or {}
        topic = header_text(headers.get(names.TOPIC))
        message_id = message.message_id or header_text(headers.get(names.MESSAGE_ID))
        count = int(headers.get("x-delivery-count") or 0)
        receipt = _Receipt(
            shard, message, topic, header_text(headers.get(names.KEY)), message_id, count
        )
        replayed = names.REPLAYED_FROM in headers
        if (
            count == 0
            and not message.redelivered
            and not replayed
            and (topic, message_id) in shard.seen
        ):
            await message.ack()  # a repeated publish
            return
        else:
            if count == 0:
                shard.seen[(topic, message_id)] = None
                if len(shard.seen) > SEEN_PER_SHARD:
                    shard.seen.popitem(last=False)
            self._buffer.append(receipt)
        self._wake.set()

    async def _expire_leases(self) -> None:
        now = time.monotonic()
        for key, receipt in list(self._handed.items()):
            if receipt.lease_until > now or self._handed.pop(key, None) is None:
                continue
            if receipt.attempt >= self._spec.max_attempts:
                reason = f"not settled within ack_wait on each of {receipt.attempt} attempts"
                await self._bury(receipt, reason, receipt.attempt)
            else:
                await self._release(receipt.shard, RELEASE_COOLDOWN, failed=receipt)

    # -- the Consumer port -----------------------------------------------------------------

    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self._closed:
            raise RuntimeError("fetch on a closed consumer")
        deadline = time.monotonic() + timeout
        while True:
            await self._expire_leases()
            out = await self._take(max_messages)
            left = deadline - time.monotonic()
            if out or left <= 0:
                return out
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(left, TICK))

    async def _take(self, max_messages: int) -> list[Delivery]:
        spec = self._spec
        room = min(max_messages, spec.max_in_flight - len(self._handed))
        blocked = {r.key for r in self._handed.values()}
        now = time.monotonic()
        out: list[Delivery] = []
        keep: list[_Receipt] = []
        for receipt in self._buffer:
            if (
                len(out) >= room
                or receipt.key in blocked
                or receipt.not_before > now
                # A shard being given up finishes its retries, and hands out nothing new.
                or (receipt.shard.draining and not receipt.retries)
            ):
                keep.append(receipt)
            elif receipt.attempt > spec.max_attempts:
                # Returned by a member that died holding it, on its last attempt.
                reason = f"member lost on each of {spec.max_attempts} attempts"
                await self._bury(receipt, reason, spec.max_attempts)
                continue
            else:
                receipt.lease_until = time.monotonic() + spec.ack_wait
                self._handed[id(receipt)] = receipt
                out.append(self._delivery(receipt))
            blocked.add(receipt.key)
        self._buffer = keep
        return out

    def _delivery(self, receipt: _Receipt) -> Delivery:
        headers = receipt.message.headers or {}
        return Delivery(
            topic=receipt.topic,
            key=receipt.key,
            message_id=receipt.message_id,
            payload=receipt.message.body,
            attempt=receipt.attempt,
            headers={
                k: header_text(v)
                for k, v in headers.items()
                if not k.startswith(names.RESERVED_PREFIXES)
            },
            receipt=receipt,
        )

    async def settle(self, outcomes: Sequence[tuple[Delivery, Outcome]]) -> None:
        for delivery, outcome in outcomes:
            receipt = delivery.receipt
            if not isinstance(receipt, _Receipt) or self._handed.pop(id(receipt), None) is None:
                continue  # settled already, or its lease ran out and the shard was given up
            if isinstance(outcome, Ack):
                receipt.shard.hand_backs.pop(receipt.ledger_key, None)
                try:
                    await receipt.message.ack()
                except (AMQPError, RuntimeError):
                    # Its channel died: the broker returns it to the queue, and the
                    # redelivery is recognised by the consumer's processed_messages.
                    log.warning("ack lost with its channel; the message will come back")
            elif isinstance(outcome, Retry) and delivery.attempt < self._spec.max_attempts:
                if self._owned.get(receipt.shard.index) is receipt.shard:
                    receipt.retries += 1
                    receipt.not_before = time.monotonic() + outcome.delay
                    self._buffer.insert(0, receipt)  # still its key's head
            elif isinstance(outcome, Retry):
                reason = f"still failing after {delivery.attempt} attempts"
                await self._bury(receipt, reason, delivery.attempt)
            elif isinstance(outcome, DeadLetter):
                await self._bury(receipt, outcome.reason, delivery.attempt)
        self._wake.set()

    async def _bury(self, receipt: _Receipt, reason: str, attempts: int) -> None:
        if self._owned.get(receipt.shard.index) is not receipt.shard:
            return  # its channel is gone, so it is back in the queue
        await self._broker.bury(self._spec.group, receipt.message, reason, attempts)
        await receipt.message.ack()
        receipt.shard.hand_backs.pop(receipt.ledger_key, None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # A graceful stop gives every shard up, counting what it hands back; closing the
        # connection then returns anything left and frees the shard locks.
        for shard in list(self._owned.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._release(shard, 0.0), CLOSE_TIMEOUT)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._owned.clear()
        self._buffer.clear()
        self._handed.clear()
