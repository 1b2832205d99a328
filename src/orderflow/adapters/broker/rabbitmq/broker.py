"""The RabbitMQ engine of the Broker port (aio-pika, RabbitMQ 3.10 or newer, no plugins).

Layout and ordering: see `topology`; claiming shards and handing out: see `consumer`.
Durability: quorum queues, persistent messages, and `publish` returns only once the broker
confirmed every message (publisher confirms, published concurrently, confirms gathered).
Dead letters: the adapter republishes a delivery to the group's dead-letter queue with the reason
(confirmed) and then acks it; the shard queues also dead-letter there past a backstop delivery
limit. A replay takes the dead letter off that queue (unacked, so no one else sees it), publishes
it straight to its group's shard queue for its key (the default exchange: no other group gets
it), confirmed, and only then acks it off the dead-letter queue.
RabbitMQ has no publish-side dedup without a plugin, so the shard's owner drops a message id it
already saw on that shard (see `consumer`), except a replay's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any

try:
    import aio_pika
    from aio_pika.exceptions import AMQPError, ChannelClosed
except ImportError as exc:  # an optional engine: its library comes with the extra
    raise ImportError(
        "the RabbitMQ broker engine needs aio-pika: pip install 'orderflow[rabbitmq]'"
    ) from exc

from orderflow.adapters.broker.partitioning import partition_of
from orderflow.adapters.broker.rabbitmq import topology as names
from orderflow.adapters.broker.rabbitmq.consumer import (
    RabbitMqConsumer,
    connection_open,
    header_text,
)
from orderflow.adapters.broker.rabbitmq.topology import Topology
from orderflow.adapters.urls import redact_url
from orderflow.ports.broker import ConsumerSpec, DeadLetterRecord, OutgoingMessage

PUBLISH_TIMEOUT = 10.0
PUBLISH_CHUNK = 512  # publishes awaiting their confirm at once


class RabbitMqBroker:
    def __init__(
        self, url: str, prefix: str, *, partitions: int = names.DEFAULT_PARTITIONS
    ) -> None:
        self.url = url
        self.shown_url = redact_url(url)  # for errors and logs: no credentials
        self.topology = Topology(prefix, partitions)
        self._connection: Any = None
        self._channel: Any = None
        self._dead_at = 0  # the position stamped on the last dead letter buried here
        self._reconnect = asyncio.Lock()
        self._consumers: list[RabbitMqConsumer] = []
        self._declared: set[tuple[str, tuple[str, ...]]] = set()
        self.groups: set[str] = set()  # groups this broker declared (for destroy)

    async def connect(self) -> None:
        await self.channel()

    async def channel(self) -> Any:
        """The publishing channel (confirms on), reconnecting if the connection was lost."""
        if self._channel_usable():
            return self._channel
        async with self._reconnect:
            if self._channel_usable():
                return self._channel
            try:
                if not connection_open(self._connection):
                    self._connection = await aio_pika.connect(self.url, timeout=5)
                self._channel = await self._connection.channel(publisher_confirms=True)
                await self._channel.declare_exchange(
                    self.topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True
                )
                await self._channel.declare_exchange(
                    self.topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
                )
            except (OSError, AMQPError, TimeoutError) as exc:
                raise ConnectionError(f"cannot reach RabbitMQ at {self.shown_url}: {exc}") from exc
            return self._channel

    def _channel_usable(self) -> bool:
        return (
            self._channel is not None
            and not self._channel.is_closed
            and connection_open(self._connection)
        )

    async def connect_member(self) -> Any:
        """A connection of its own for one group member, so its shard locks die with it."""
        try:
            return await aio_pika.connect(self.url, timeout=5)
        except (OSError, AMQPError, TimeoutError) as exc:
            raise ConnectionError(f"cannot reach RabbitMQ at {self.shown_url}: {exc}") from exc

    async def close(self) -> None:
        for consumer in self._consumers:
            await consumer.close()
        self._consumers.clear()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = self._channel = None

    async def ping(self) -> None:
        channel = await self.channel()
        try:
            await channel.get_exchange(self.topology.exchange, ensure=True)
        except (OSError, AMQPError) as exc:
            raise ConnectionError(f"RabbitMQ at {self.shown_url} does not answer: {exc}") from exc

    async def declare(self, spec: ConsumerSpec) -> None:
        signature = (spec.group, spec.topics)
        if signature in self._declared:
            return
        topo, group = self.topology, spec.group
        channel = await self.channel()
        exchange = await channel.get_exchange(topo.exchange, ensure=False)
        dlx = await channel.get_exchange(topo.dead_letter_exchange, ensure=False)
        expiry = names.expiry_arguments(spec)
        dead = await channel.declare_queue(
            topo.dead_letter_queue(group),
            durable=True,
            arguments={"x-queue-type": "quorum", **expiry},
        )
        await dead.bind(dlx, routing_key=group)
        arguments = {
            "x-queue-type": "quorum",
            "x-single-active-consumer": True,
            "x-delivery-limit": names.DELIVERY_LIMIT_BACKSTOP,
            "x-dead-letter-exchange": topo.dead_letter_exchange,
            "x-dead-letter-routing-key": group,
            **expiry,
        }

        async def shard(n: int) -> None:
            queue = await channel.declare_queue(
                topo.shard_queue(group, n), durable=True, arguments=arguments
            )
            for topic in spec.topics:
                await queue.bind(exchange, routing_key=topo.shard_routing_key(topic, n))

        await asyncio.gather(*(shard(n) for n in range(topo.partitions)))
        self._declared.add(signature)
        self.groups.add(group)

    async def consumer(self, spec: ConsumerSpec) -> RabbitMqConsumer:
        await self.declare(spec)
        member = RabbitMqConsumer(self, spec)
        await member.start()
        self._consumers.append(member)
        return member

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        channel = await self.channel()
        try:
            exchange = await channel.get_exchange(self.topology.exchange, ensure=False)
            for start in range(0, len(messages), PUBLISH_CHUNK):
                chunk = messages[start : start + PUBLISH_CHUNK]
                async with asyncio.timeout(PUBLISH_TIMEOUT):
                    await asyncio.gather(*(self._publish_one(exchange, m) for m in chunk))
        except (OSError, AMQPError, TimeoutError) as exc:
            # Not confirmed means not published as far as the caller knows: its outbox retries.
            raise ConnectionError(f"publish to RabbitMQ at {self.shown_url} failed: {exc}") from exc

    async def _publish_one(self, exchange: Any, message: OutgoingMessage) -> None:
        headers: dict[str, Any] = {
            **message.headers,
            names.KEY: message.key,
            names.TOPIC: message.topic,
            names.MESSAGE_ID: message.message_id,
        }
        await exchange.publish(
            aio_pika.Message(
                message.payload,
                headers=headers,
                message_id=message.message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=self.topology.routing_key(message.topic, message.key),
        )

    async def bury(self, group: str, message: Any, reason: str, attempts: int) -> None:
        """Copy a delivery (an aio-pika incoming message) into the group's dead letters."""
        channel = await self.channel()
        dlx = await channel.get_exchange(self.topology.dead_letter_exchange, ensure=False)
        headers = dict(message.headers or {})
        headers.update({names.GROUP: group, names.REASON: reason, names.ATTEMPTS: str(attempts)})
        # Unique per member (no two of its dead letters share a position); across members the
        # clocks must agree to within the sweep's interval, or a late one may be read late.
        self._dead_at = max(time.time_ns() // 1000, self._dead_at + 1)
        headers[names.DEAD_AT] = str(self._dead_at)
        await dlx.publish(
            aio_pika.Message(
                message.body,
                headers=headers,
                message_id=message.message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=group,
        )

    async def record_hand_backs(self, queue: str, counts: dict[str, int]) -> None:
        """Write a shard's hand-back counts (see `consumer`) as its ledger queue's newest entry."""
        channel = await self.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(
                json.dumps(counts).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            ),
            routing_key=queue,
        )

    async def backlog(self, spec: ConsumerSpec) -> int:
        """Ready messages of the group's shard queues (a passive declare reports those only:
        what members hold unacknowledged is not counted)."""
        await self.channel()  # (re)connects
        channel = await self._connection.channel()
        total = 0
        try:
            for n in range(self.topology.partitions):
                name = self.topology.shard_queue(spec.group, n)
                queue = await channel.declare_queue(name, passive=True)
                total += int(queue.declaration_result.message_count or 0)
        except ChannelClosed:
            return total  # no such queue: the group was never declared
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        return total

    async def dead_letters(
        self, group: str, limit: int = 100, after: int = 0
    ) -> list[DeadLetterRecord]:
        # Browse: get without ack, then close the channel, which puts them all back. A quorum
        # queue has no offsets and puts browsed messages back behind the others, so the whole
        # queue is read and ordered by the time each was buried (stamped by `bury`, in us).
        await self.channel()  # (re)connects
        channel = await self._connection.channel()
        found: list[DeadLetterRecord] = []
        try:
            queue = await channel.declare_queue(
                self.topology.dead_letter_queue(group), passive=True
            )
            # Until empty, not up to the declared count: messages an earlier browse handed
            # back may still be on their way to the queue when it is declared.
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                record = _dead_letter_record(group, message)
                if record.position > after:
                    found.append(record)
        except ChannelClosed:
            return []  # no such queue: the group never dead-lettered anything
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        found.sort(key=lambda r: (r.position, r.message_id))
        return found[:limit]

    async def dead_letter(self, group: str, position: int) -> DeadLetterRecord | None:
        found = await self.dead_letters(group, 1, after=position - 1)
        return found[0] if found and found[0].position == position else None

    async def replay_dead_letter(self, group: str, position: int) -> bool:
        return await self._take_dead_letter(group, position, replay=True)

    async def discard_dead_letter(self, group: str, position: int) -> bool:
        return await self._take_dead_letter(group, position, replay=False)

    async def _take_dead_letter(self, group: str, position: int, *, replay: bool) -> bool:
        """Find the dead letter at `position` (holding every message read unacked, so a
        concurrent replay cannot see it), replay it if asked, then ack it off the queue; closing
        the channel puts the others back."""
        await self.channel()  # (re)connects
        channel = await self._connection.channel()
        try:
            queue = await channel.declare_queue(
                self.topology.dead_letter_queue(group), passive=True
            )
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                if _dead_letter_record(group, message).position == position:
                    if replay:
                        await self._replay(group, message)
                    await message.ack()
                    return True
        except ChannelClosed:
            return False  # no such queue: the group never dead-lettered anything
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        return False

    async def _replay(self, group: str, message: Any) -> None:
        record = _dead_letter_record(group, message)
        headers: dict[str, Any] = {
            k: v
            for k, v in (message.headers or {}).items()
            if not k.startswith(names.RESERVED_PREFIXES)
        }
        headers.update(
            {
                names.KEY: record.key,
                names.TOPIC: record.topic,
                names.MESSAGE_ID: record.message_id,
                names.REPLAYED_FROM: str(record.position),
            }
        )
        shard = partition_of(record.key, self.topology.partitions)
        channel = await self.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(
                record.payload,
                headers=headers,
                message_id=record.message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=self.topology.shard_queue(group, shard),
        )

    async def destroy(self) -> None:
        """Delete the queues of the groups this broker declared, and the prefix's exchanges."""
        await self.channel()
        channel = await self._connection.channel()
        for group in sorted(self.groups):
            for queue in self.topology.group_queues(group):
                with contextlib.suppress(AMQPError):
                    await channel.queue_delete(queue)
        for exchange in (self.topology.exchange, self.topology.dead_letter_exchange):
            with contextlib.suppress(AMQPError):
                await channel.exchange_delete(exchange)
        await channel.close()

    def __repr__(self) -> str:
        return f"RabbitMqBroker({self.shown_url!r}, {self.topology.prefix!r})"


def _dead_letter_record(group: str, message: Any) -> DeadLetterRecord:
    headers = message.headers or {}
    reason = header_text(headers.get(names.REASON))
    attempts = header_text(headers.get(names.ATTEMPTS))
    if not reason:  # dead-lettered by the queue's backstop delivery limit
        reason = "delivery limit reached"
        attempts = str(names.DELIVERY_LIMIT_BACKSTOP + 1)
    return DeadLetterRecord(
        group=group,
        topic=header_text(headers.get(names.TOPIC)),
        key=header_text(headers.get(names.KEY)),
        message_id=message.message_id or header_text(headers.get(names.MESSAGE_ID)),
        payload=message.body,
        attempts=int(attempts or 0),
        reason=reason,
        # Buried before positions were stamped: first of all.
        position=int(header_text(headers.get(names.DEAD_AT)) or 1),
    )
