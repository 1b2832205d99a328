"""The NATS JetStream engine of the Broker port (nats-py, nats-server 2.9 or newer).

Layout and ordering: see `topology`. Durability: file storage; `publish` returns after the
server's PubAck for every message (published concurrently, acks gathered). Dedup: the
`Nats-Msg-Id` header within the stream's duplicate window. Dead letters: republished to the
prefix's DLQ stream with the reason, then the original is terminated. A replay publishes the dead
letter to its topic again, marked for its group alone (the other groups' members acknowledge and
skip it), with a message id of its own for dedup, then deletes it from the DLQ stream.

Retention is by limits (age), not by interest. An interest-retention stream stores a message only
if a consumer is attached at that instant, and acknowledges the publish either way (nats-server
2.9 skips the message and even records its id for dedup, so a republish is dropped too). While
nats-server shuts down it detaches every consumer before it stops taking publishes, so with
interest retention every publish in that window was acknowledged and lost: a broker restart lost
accepted orders. Purging what the groups acknowledged is no way out either: on 2.9 a purge, even
filtered, forgets every consumer's pending deliveries (a message waiting for a delayed retry is
never delivered again). So the stream keeps every message for `max_age`, acknowledged or not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

try:
    import nats
    from nats.errors import Error as NatsError
    from nats.js import api
    from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NotFoundError
except ImportError as exc:  # an optional engine: its library comes with the extra
    raise ImportError(
        "the NATS broker engine needs nats-py: pip install 'orderflow[nats]'"
    ) from exc

from orderflow.adapters.broker.nats import topology as names
from orderflow.adapters.broker.nats.consumer import NatsConsumer
from orderflow.adapters.broker.nats.topology import Topology
from orderflow.adapters.urls import redact_url
from orderflow.ports.broker import ConsumerSpec, DeadLetterRecord, OutgoingMessage

PUBLISH_TIMEOUT = 5.0
PUBLISH_CHUNK = 512  # publishes in flight at once: enough to fill the pipe, bounded memory
DEFAULT_MAX_AGE = 7 * 24 * 3600.0  # seconds the topics stream keeps a message


class NatsBroker:
    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        partitions: int = names.DEFAULT_PARTITIONS,
        dedup_window: float = 120.0,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self.url = url
        self.shown_url = redact_url(url)  # for errors and logs: no credentials
        self.topology = Topology(prefix, partitions)
        self._dedup_window = dedup_window
        self._max_age = max_age
        self._nc: Any = None
        self._js: Any = None
        self._hand_backs: Any = None  # the KeyValue bucket of hand-back counts
        self._consumers: list[NatsConsumer] = []
        self._declared: set[tuple[str, tuple[str, ...]]] = set()

    @property
    def client(self) -> Any:
        if self._nc is None:
            raise RuntimeError("NatsBroker is not connected (call connect() first)")
        return self._nc

    async def connect(self) -> None:
        try:
            # Reconnect forever: a broker restart must not end the service.
            self._nc = await nats.connect(
                self.url,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                connect_timeout=2,
            )
        except (OSError, NatsError) as exc:
            raise ConnectionError(f"cannot reach NATS at {self.shown_url}: {exc}") from exc
        self._js = self._nc.jetstream(timeout=PUBLISH_TIMEOUT)
        await self._ensure_streams()

    async def _ensure_streams(self) -> None:
        topo = self.topology
        await self._ensure_stream(
            api.StreamConfig(
                name=topo.stream,
                subjects=[topo.stream_subjects],
                storage=api.StorageType.FILE,
                # Not INTEREST, which drops publishes while the server shuts down: see above.
                retention=api.RetentionPolicy.LIMITS,
                max_age=self._max_age,
                duplicate_window=self._dedup_window,
            )
        )
        await self._ensure_stream(
            api.StreamConfig(
                name=topo.dlq_stream,
                subjects=[topo.dlq_subjects],
                storage=api.StorageType.FILE,
                retention=api.RetentionPolicy.LIMITS,
                duplicate_window=self._dedup_window,
            )
        )

        try:
            self._hand_backs = await self._js.key_value(topo.hand_backs_bucket)
        except BucketNotFoundError:
            self._hand_backs = await self._js.create_key_value(
                api.KeyValueConfig(
                    bucket=topo.hand_backs_bucket,
                    history=1,
                    ttl=self._max_age,  # no longer than the messages it counts for
                    storage=api.StorageType.FILE,
                )
            )

    async def _ensure_stream(self, config: api.StreamConfig) -> None:
        try:
            await self._js.stream_info(config.name)
        except NotFoundError:
            await self._js.add_stream(config)

    async def close(self) -> None:
        for consumer in self._consumers:
            await consumer.close()
        self._consumers.clear()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None

    async def ping(self) -> None:
        if self._nc is None or not self._nc.is_connected:
            raise ConnectionError(f"not connected to NATS at {self.shown_url}")
        try:
            await self._nc.flush(timeout=2)
        except (OSError, NatsError, TimeoutError) as exc:
            raise ConnectionError(f"NATS at {self.shown_url} does not answer: {exc}") from exc

    async def declare(self, spec: ConsumerSpec) -> None:
        signature = (spec.group, spec.topics)
        if signature in self._declared:
            return
        topo = self.topology
        configs = [
            api.ConsumerConfig(
                durable_name=topo.durable(spec.group, topic, n),
                filter_subject=topo.partition_subject(topic, n),
                deliver_policy=api.DeliverPolicy.NEW,
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=spec.ack_wait,
                # Attempts are counted and dead-lettered by the adapter (it needs the reason).
                max_deliver=-1,
                # One unsettled message per partition: per-key order across all members.
                max_ack_pending=1,
                # Ephemeral groups: the server deletes the consumer once nobody pulled for this
                # long (members pull continuously, so a live one keeps it).
                inactive_threshold=spec.expires_after,
            )
            for topic in spec.topics
            for n in range(topo.partitions)
        ]
        await asyncio.gather(*(self._js.add_consumer(topo.stream, c) for c in configs))
        self._declared.add(signature)

    async def consumer(self, spec: ConsumerSpec) -> NatsConsumer:
        await self.declare(spec)
        member = NatsConsumer(self, spec)
        await member.start()
        self._consumers.append(member)
        return member

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        # While reconnecting nats-py would buffer the publish; fail instead so the caller's
        # outbox keeps the message.
        if self._nc is None or not self._nc.is_connected:
            raise ConnectionError(
                f"not connected to NATS at {self.shown_url}; nothing was published"
            )
        try:
            for start in range(0, len(messages), PUBLISH_CHUNK):
                chunk = messages[start : start + PUBLISH_CHUNK]
                await asyncio.gather(*(self._publish_one(m) for m in chunk))
        except (OSError, NatsError, TimeoutError) as exc:
            raise ConnectionError(f"publish to NATS at {self.shown_url} failed: {exc}") from exc

    async def _publish_one(self, message: OutgoingMessage) -> None:
        headers = {
            **message.headers,
            names.KEY: message.key,
            names.MESSAGE_ID: message.message_id,
            # Per topic, like the embedded engine: one id on two topics is two messages.
            names.NATS_MSG_ID: f"{message.topic}:{message.message_id}",
        }
        await self._js.publish(
            self.topology.subject(message.topic, message.key),
            message.payload,
            headers=headers,
        )

    async def bury(self, group: str, topic: str, msg: Any, reason: str, attempts: int) -> None:
        """Copy a delivery into the group's dead letters (idempotently: once per stream seq)."""
        headers = {
            **(msg.headers or {}),
            names.GROUP: group,
            names.TOPIC: topic,
            names.REASON: reason,
            names.ATTEMPTS: str(attempts),
            names.NATS_MSG_ID: f"{group}:{msg.metadata.sequence.stream}",
        }
        await self._js.publish(self.topology.dlq_subject(group), msg.data, headers=headers)

    # Hand-backs: the server counts every delivery (`num_delivered`), also those a member pulled
    # ahead and handed back unprocessed when it stopped. Those are counted here, so that an
    # attempt is a delivery that reached a handler: restarting workers with a backlog never
    # dead-letters anything.

    async def hand_backs(self, key: str) -> int:
        try:
            entry = await self._hand_backs.get(key)
        except KeyNotFoundError:
            return 0
        return int(entry.value or b"0")

    async def add_hand_back(self, key: str) -> None:
        # A partition's message is held by one member at a time (max_ack_pending=1): no race.
        await self._hand_backs.put(key, str(await self.hand_backs(key) + 1).encode())

    async def forget_hand_backs(self, key: str) -> None:
        with contextlib.suppress(NatsError, TimeoutError):
            await self._hand_backs.purge(key)

    async def backlog(self, spec: ConsumerSpec) -> int:
        """Not delivered yet plus delivered and not acknowledged, over the group's consumers
        (one per topic and partition), asked concurrently."""
        topo = self.topology
        durables = [
            topo.durable(spec.group, topic, n)
            for topic in spec.topics
            for n in range(topo.partitions)
        ]
        infos = await asyncio.gather(
            *(self._js.consumer_info(topo.stream, d) for d in durables), return_exceptions=True
        )
        total = 0
        for info in infos:
            if isinstance(info, NotFoundError):
                continue  # not declared (yet): nothing waits for it
            if isinstance(info, BaseException):
                raise ConnectionError(f"consumer info from NATS failed: {info!r}") from info
            total += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return total

    async def dead_letters(
        self, group: str, limit: int = 100, after: int = 0
    ) -> list[DeadLetterRecord]:
        topo = self.topology
        subject = topo.dlq_subject(group)
        records: list[DeadLetterRecord] = []
        seq = after + 1  # positions are the DLQ stream's sequence numbers
        while len(records) < limit:
            try:
                raw = await self._js.get_msg(topo.dlq_stream, seq=seq, subject=subject, next=True)
            except NotFoundError:
                break
            headers = raw.headers or {}
            if headers.get(names.GROUP) == group:
                records.append(
                    DeadLetterRecord(
                        group=group,
                        topic=headers.get(names.TOPIC, ""),
                        key=headers.get(names.KEY, ""),
                        message_id=headers.get(names.MESSAGE_ID, ""),
                        payload=raw.data or b"",
                        attempts=int(headers.get(names.ATTEMPTS, "0")),
                        reason=headers.get(names.REASON, ""),
                        position=raw.seq,
                    )
                )
            seq = raw.seq + 1
        return records

    async def dead_letter(self, group: str, position: int) -> DeadLetterRecord | None:
        found = await self.dead_letters(group, 1, after=position - 1)
        return found[0] if found and found[0].position == position else None

    async def replay_dead_letter(self, group: str, position: int) -> bool:
        record = await self.dead_letter(group, position)
        if record is None:
            return False
        raw = await self._js.get_msg(self.topology.dlq_stream, seq=position)
        headers = {k: v for k, v in (raw.headers or {}).items() if k not in names.RESERVED}
        headers.update(
            {
                names.KEY: record.key,
                names.MESSAGE_ID: record.message_id,
                names.REPLAY_FOR: group,
                # Two replays of one dead letter racing publish it once.
                names.NATS_MSG_ID: f"replay:{group}:{position}",
            }
        )
        subject = self.topology.subject(record.topic, record.key)
        await self._js.publish(subject, record.payload, headers=headers)
        return await self._delete_dead_letter(position)

    async def discard_dead_letter(self, group: str, position: int) -> bool:
        if await self.dead_letter(group, position) is None:
            return False
        return await self._delete_dead_letter(position)

    async def _delete_dead_letter(self, position: int) -> bool:
        try:
            return bool(await self._js.delete_msg(self.topology.dlq_stream, position))
        except NotFoundError:
            return False  # a concurrent replay or discard took it first

    async def destroy(self) -> None:
        """Delete this prefix's streams (and with them every consumer): for tests and teardown."""
        with contextlib.suppress(NotFoundError):
            await self._js.delete_key_value(self.topology.hand_backs_bucket)
        for stream in (self.topology.stream, self.topology.dlq_stream):
            with contextlib.suppress(NotFoundError):
                await self._js.delete_stream(stream)

    def __repr__(self) -> str:
        return f"NatsBroker({self.shown_url!r}, {self.topology.prefix!r})"
