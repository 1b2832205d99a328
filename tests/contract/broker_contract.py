"""The Broker contract: every engine runs these same tests.

An engine's test module subclasses `BrokerContract` and provides the `make_broker` fixture (see
`BrokerFactory`), overriding the timing knobs below if the engine needs more slack.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Protocol

import pytest

from orderflow.ports.broker import (
    Ack,
    Broker,
    Consumer,
    ConsumerSpec,
    DeadLetter,
    DeadLetterRecord,
    Delivery,
    Outcome,
    OutgoingMessage,
    Retry,
)

TOPIC = "orders.placed"


class BrokerFactory(Protocol):
    async def __call__(self, name: str = "main") -> Broker:
        """A connected broker on storage private to the running test.

        Calling it again with the same name gives another connection to the same storage (a
        restart, or another member process); the fixture closes every broker it made.
        """
        ...


def message(i: int, key: str | None = None, topic: str = TOPIC) -> OutgoingMessage:
    return OutgoingMessage(
        topic=topic,
        key=key if key is not None else f"order-{i}",
        message_id=f"msg-{i}",
        payload=f'{{"n": {i}}}'.encode(),
        headers={"content-type": "application/json", "n": str(i)},
    )


async def settle_all(consumer: Consumer, deliveries: Sequence[Delivery], outcome: Outcome) -> None:
    await consumer.settle([(d, outcome) for d in deliveries])


class BrokerContract:
    ack_wait = 1.0  # the short ack_wait the tests configure
    retry_delay = 0.6  # the Retry delay the tests ask for
    grace = 2.0  # extra seconds an engine may take to redeliver or dead-letter
    quiet = 0.3  # how long to wait when checking that nothing is delivered
    expiry = 1.5  # expires_after of the ephemeral groups the tests declare
    expiry_grace = 4.0  # extra seconds an engine may take to delete an expired group

    @pytest.fixture
    async def make_broker(self) -> BrokerFactory:
        pytest.fail("an engine's test class must provide the make_broker fixture")

    def spec(
        self,
        group: str = "workers",
        *,
        max_in_flight: int = 256,
        max_attempts: int = 5,
        ack_wait: float | None = None,
        expires_after: float | None = None,
    ) -> ConsumerSpec:
        return ConsumerSpec(
            group=group,
            topics=(TOPIC,),
            max_in_flight=max_in_flight,
            max_attempts=max_attempts,
            ack_wait=self.ack_wait if ack_wait is None else ack_wait,
            expires_after=expires_after,
        )

    async def fetch_until(
        self, consumer: Consumer, count: int, within: float, batch: int = 100
    ) -> list[Delivery]:
        """Fetch (without settling) until `count` deliveries arrived or `within` seconds passed."""
        got: list[Delivery] = []
        deadline = time.monotonic() + within
        while len(got) < count and (left := deadline - time.monotonic()) > 0:
            got += await consumer.fetch(min(batch, count - len(got)), timeout=left)
        return got

    async def drain(self, consumer: Consumer, count: int) -> list[Delivery]:
        """Fetch and ack until `count` arrived, then make sure nothing more comes."""
        got: list[Delivery] = []
        deadline = time.monotonic() + self.grace + 5
        while len(got) < count and (left := deadline - time.monotonic()) > 0:
            batch = await consumer.fetch(100, timeout=left)
            await settle_all(consumer, batch, Ack())
            got += batch
        extra = await consumer.fetch(100, timeout=self.quiet)
        assert extra == [], f"unexpected extra deliveries {[d.message_id for d in extra]}"
        return got

    async def backlog_when_settled_at(
        self, broker: Broker, spec: ConsumerSpec, expected: int
    ) -> int:
        """The group's backlog once it reads `expected`, or as it is after the grace period
        (engines report it from statistics that may trail by a moment)."""
        deadline = time.monotonic() + self.grace
        while True:
            count = await broker.backlog(spec)
            if count == expected or time.monotonic() >= deadline:
                return count
            await asyncio.sleep(0.05)

    async def test_backlog_counts_what_a_group_has_not_settled(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = await make_broker()
        spec, other = self.spec(), self.spec("others")
        await broker.declare(spec)
        await broker.declare(other)
        assert await broker.backlog(self.spec("never-declared")) == 0
        await broker.publish([message(i) for i in range(5)])
        assert await self.backlog_when_settled_at(broker, spec, 5) == 5

        await self.drain(await broker.consumer(spec), 5)

        assert await self.backlog_when_settled_at(broker, spec, 0) == 0
        assert await broker.backlog(other) == 5  # each group has its own

    async def test_publish_then_fetch_and_ack(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec())
        await broker.publish([message(1), message(2, key="order-1")])

        got = await self.drain(consumer, 2)

        assert [(d.topic, d.key, d.message_id, d.payload, d.attempt) for d in got] == [
            (TOPIC, "order-1", "msg-1", b'{"n": 1}', 1),
            (TOPIC, "order-1", "msg-2", b'{"n": 2}', 1),
        ]
        assert dict(got[0].headers) == {"content-type": "application/json", "n": "1"}

    async def test_acked_messages_are_not_redelivered(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec())
        await broker.publish([message(i) for i in range(3)])
        got = await self.fetch_until(consumer, 3, within=self.grace)
        await settle_all(consumer, got, Ack())

        again = await consumer.fetch(10, timeout=self.ack_wait + self.quiet)

        assert len(got) == 3
        assert again == []

    async def test_every_group_gets_every_message(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        billing = await broker.consumer(self.spec("billing"))
        shipping = await broker.consumer(self.spec("shipping"))
        await broker.publish([message(i) for i in range(5)])

        billed = await self.drain(billing, 5)
        shipped = await self.drain(shipping, 5)

        expected = {f"msg-{i}" for i in range(5)}
        assert {d.message_id for d in billed} == expected
        assert {d.message_id for d in shipped} == expected

    async def test_members_of_a_group_share_the_work(self, make_broker: BrokerFactory) -> None:
        first = await (await make_broker()).consumer(self.spec(max_in_flight=10))
        second = await (await make_broker()).consumer(self.spec(max_in_flight=10))
        publisher = await make_broker()
        await publisher.publish([message(i) for i in range(40)])

        seen: list[str] = []
        per_member = [0, 0]
        deadline = time.monotonic() + self.grace + 5
        while len(seen) < 40 and time.monotonic() < deadline:
            # Both members hold their batches unsettled at once: the batches must not overlap.
            one = await first.fetch(10, timeout=self.quiet)
            two = await second.fetch(10, timeout=self.quiet)
            assert not {d.message_id for d in one} & {d.message_id for d in two}
            per_member[0] += len(one)
            per_member[1] += len(two)
            seen += [d.message_id for d in one + two]
            await settle_all(first, one, Ack())
            await settle_all(second, two, Ack())

        assert sorted(seen) == sorted(f"msg-{i}" for i in range(40))
        assert all(per_member), per_member

    async def test_unsettled_delivery_is_redelivered_after_ack_wait(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = await make_broker()
        crashed = await broker.consumer(self.spec())
        survivor = await broker.consumer(self.spec())
        await broker.publish([message(1)])
        [first] = await self.fetch_until(crashed, 1, within=self.grace)

        early = await survivor.fetch(10, timeout=self.quiet)
        [again] = await self.fetch_until(survivor, 1, within=self.ack_wait + self.grace)
        await settle_all(survivor, [again], Ack())
        await settle_all(crashed, [first], Ack())  # too late: must be harmless

        assert early == []
        assert (first.attempt, again.attempt) == (1, 2)
        assert again.message_id == first.message_id
        assert await survivor.fetch(10, timeout=self.quiet) == []

    async def test_retry_is_delivered_after_its_delay(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec())
        await broker.publish([message(1)])
        [first] = await self.fetch_until(consumer, 1, within=self.grace)
        await consumer.settle([(first, Retry(self.retry_delay))])
        retried_at = time.monotonic()

        early = await consumer.fetch(10, timeout=self.retry_delay / 2)
        [again] = await self.fetch_until(consumer, 1, within=self.retry_delay + self.grace)

        assert early == []
        assert time.monotonic() - retried_at >= self.retry_delay * 0.9
        assert (again.message_id, again.attempt) == ("msg-1", 2)

    async def test_retries_end_in_dead_letters(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec(max_attempts=3))
        await broker.publish([message(1)])

        attempts = []
        for _ in range(3):
            [delivery] = await self.fetch_until(consumer, 1, within=self.grace)
            attempts.append(delivery.attempt)
            await consumer.settle([(delivery, Retry(0.0))])

        assert attempts == [1, 2, 3]
        assert await consumer.fetch(10, timeout=self.quiet) == []
        [dead] = await self.wait_for_dead_letters(broker, consumer, "workers")
        assert (dead.group, dead.topic, dead.message_id, dead.payload) == (
            "workers",
            TOPIC,
            "msg-1",
            b'{"n": 1}',
        )
        assert dead.attempts == 3
        assert dead.reason

    async def test_expired_leases_end_in_dead_letters(self, make_broker: BrokerFactory) -> None:
        # A message that crashes its consumer every time must not crash-loop forever.
        broker = await make_broker()
        consumer = await broker.consumer(self.spec(max_attempts=2))
        await broker.publish([message(1)])

        [first] = await self.fetch_until(consumer, 1, within=self.grace)
        [second] = await self.fetch_until(consumer, 1, within=self.ack_wait + self.grace)
        [dead] = await self.wait_for_dead_letters(broker, consumer, "workers")

        assert (first.attempt, second.attempt) == (1, 2)
        assert (dead.message_id, dead.attempts) == ("msg-1", 2)
        assert dead.reason

    async def test_dead_letter_outcome(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec())
        await broker.publish([message(1), message(2)])
        got = await self.fetch_until(consumer, 2, within=self.grace)
        by_id = {d.message_id: d for d in got}

        await consumer.settle(
            [(by_id["msg-1"], DeadLetter("unknown sku")), (by_id["msg-2"], Ack())]
        )

        [dead] = await self.wait_for_dead_letters(broker, consumer, "workers")
        assert (dead.message_id, dead.attempts, dead.reason) == ("msg-1", 1, "unknown sku")
        assert await consumer.fetch(10, timeout=self.quiet) == []
        assert await broker.dead_letters("some-other-group") == []

    async def test_dead_letters_page_on_from_a_position(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec())
        await broker.publish([message(i) for i in range(5)])
        got = await self.fetch_until(consumer, 5, within=self.grace)
        await settle_all(consumer, got, DeadLetter("poison"))
        await self.wait_for_dead_letters(broker, consumer, "workers")

        pages: list[list[DeadLetterRecord]] = []
        after = 0
        while page := await broker.dead_letters("workers", limit=2, after=after):
            pages.append(page)
            after = page[-1].position

        assert [len(p) for p in pages] == [2, 2, 1]
        read = [r for p in pages for r in p]
        assert sorted(r.message_id for r in read) == [f"msg-{i}" for i in range(5)]
        positions = [r.position for r in read]
        assert positions == sorted(set(positions))
        assert positions[0] > 0

    async def dead_letter_one(self, broker: Broker, consumer: Consumer) -> DeadLetterRecord:
        """Publish msg-1 and msg-2, dead-letter msg-1 and ack msg-2; msg-1's dead letter."""
        await broker.publish([message(1), message(2)])
        got = {d.message_id: d for d in await self.fetch_until(consumer, 2, within=self.grace)}
        await consumer.settle([(got["msg-1"], DeadLetter("poison")), (got["msg-2"], Ack())])
        [dead] = await self.wait_for_dead_letters(broker, consumer, "workers")
        return dead

    async def test_a_dead_letter_is_read_by_its_position(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec())
        dead = await self.dead_letter_one(broker, consumer)

        assert await broker.dead_letter("workers", dead.position) == dead
        assert await broker.dead_letter("workers", dead.position + 1) is None
        assert await broker.dead_letter("some-other-group", dead.position) is None

    async def test_a_replayed_dead_letter_reaches_its_group_once(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = await make_broker()
        others = await broker.consumer(self.spec("others"))
        consumer = await broker.consumer(self.spec())
        dead = await self.dead_letter_one(broker, consumer)
        assert len(await self.drain(others, 2)) == 2

        assert await broker.replay_dead_letter("workers", dead.position) is True
        assert await broker.replay_dead_letter("workers", dead.position) is False

        [again] = await self.fetch_until(consumer, 1, within=self.grace)
        assert (again.topic, again.key, again.message_id, again.payload, again.attempt) == (
            TOPIC,
            "order-1",
            "msg-1",
            b'{"n": 1}',
            1,
        )
        assert dict(again.headers) == {"content-type": "application/json", "n": "1"}
        assert await broker.dead_letters("workers") == []
        # Failing again buries it again, after the first.
        await consumer.settle([(again, DeadLetter("still poison"))])
        [reburied] = await self.wait_for_dead_letters(broker, consumer, "workers")
        assert (reburied.message_id, reburied.reason) == ("msg-1", "still poison")
        assert reburied.position > dead.position
        assert await broker.dead_letter("workers", dead.position) is None
        # Only the group that buried it gets the replay.
        assert await others.fetch(10, timeout=self.quiet) == []

    async def test_a_discarded_dead_letter_is_gone(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec())
        dead = await self.dead_letter_one(broker, consumer)

        assert await broker.discard_dead_letter("workers", dead.position) is True

        assert await broker.discard_dead_letter("workers", dead.position) is False
        assert await broker.replay_dead_letter("workers", dead.position) is False
        assert await broker.dead_letter("workers", dead.position) is None
        assert await broker.dead_letters("workers") == []
        assert await consumer.fetch(10, timeout=self.quiet) == []

    async def wait_for_dead_letters(
        self, broker: Broker, consumer: Consumer, group: str
    ) -> list[DeadLetterRecord]:
        """Dead letters may appear lazily (e.g. on the next fetch); nothing may be delivered."""
        deadline = time.monotonic() + self.ack_wait + self.grace
        while True:
            dead = await broker.dead_letters(group)
            if dead or time.monotonic() > deadline:
                return list(dead)
            assert await consumer.fetch(10, timeout=0.1) == []

    async def test_publish_drops_repeated_message_ids(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec())
        replay = OutgoingMessage(TOPIC, "order-1", "msg-1", b"replayed")
        await broker.publish([message(1), replay, message(2)])
        await broker.publish([replay])

        got = await self.drain(consumer, 2)

        assert [(d.message_id, d.payload) for d in got] == [
            ("msg-1", b'{"n": 1}'),
            ("msg-2", b'{"n": 2}'),
        ]

    async def test_each_key_is_processed_in_publish_order(self, make_broker: BrokerFactory) -> None:
        keys = [f"order-{k}" for k in range(5)]
        published = [message(i, key=keys[i % len(keys)]) for i in range(60)]
        brokers = [await make_broker(), await make_broker()]
        members = [await brokers[i % 2].consumer(self.spec(max_attempts=10)) for i in range(3)]
        for start in range(0, len(published), 7):
            await brokers[0].publish(published[start : start + 7])

        unsettled_keys: set[str] = set()
        done: dict[str, list[str]] = {key: [] for key in keys}
        rng = random.Random(7)

        async def work(member: Consumer) -> None:
            deadline = time.monotonic() + self.grace + 10
            while sum(map(len, done.values())) < len(published) and time.monotonic() < deadline:
                for delivery in await member.fetch(3, timeout=0.1):
                    assert delivery.key not in unsettled_keys, "a key's next message came early"
                    unsettled_keys.add(delivery.key)
                    await asyncio.sleep(rng.random() / 200)
                    retry = delivery.attempt == 1 and rng.random() < 0.2
                    # Released before settling: after settle the engine may hand out the next.
                    unsettled_keys.discard(delivery.key)
                    await member.settle([(delivery, Retry(0.0) if retry else Ack())])
                    if not retry:
                        done[delivery.key].append(delivery.message_id)

        await asyncio.gather(*(work(member) for member in members))

        for key in keys:
            assert done[key] == [m.message_id for m in published if m.key == key], key

    async def test_key_waits_while_its_head_waits_for_retry(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec())
        await broker.publish([message(1, "order-a"), message(2, "order-a"), message(3, "order-b")])

        heads = await self.fetch_until(consumer, 2, within=self.grace)
        assert sorted(d.message_id for d in heads) == ["msg-1", "msg-3"]
        by_id = {d.message_id: d for d in heads}
        await consumer.settle([(by_id["msg-1"], Retry(self.retry_delay)), (by_id["msg-3"], Ack())])

        blocked = await consumer.fetch(10, timeout=self.retry_delay / 2)
        [retried] = await self.fetch_until(consumer, 1, within=self.retry_delay + self.grace)
        await settle_all(consumer, [retried], Ack())
        [after] = await self.fetch_until(consumer, 1, within=self.grace)

        assert blocked == []
        assert (retried.message_id, retried.attempt) == ("msg-1", 2)
        assert after.message_id == "msg-2"

    async def test_fetch_respects_max_in_flight(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec(max_in_flight=3, ack_wait=30.0))
        await broker.publish([message(i) for i in range(8)])

        held = await self.fetch_until(consumer, 8, within=self.quiet * 2)
        assert len(held) == 3
        await settle_all(consumer, held[:1], Ack())
        more = await self.fetch_until(consumer, 8, within=self.quiet * 2)

        assert len(more) == 1
        assert not {d.message_id for d in more} & {d.message_id for d in held}

    async def test_messages_survive_a_restart(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker("storage")
        await broker.declare(self.spec())
        await broker.publish([message(i) for i in range(3)])
        await broker.close()

        restarted = await make_broker("storage")
        got = await self.drain(await restarted.consumer(self.spec()), 3)

        assert sorted(d.message_id for d in got) == ["msg-0", "msg-1", "msg-2"]

    async def test_unsettled_deliveries_survive_a_restart(self, make_broker: BrokerFactory) -> None:
        broker = await make_broker("storage")
        consumer = await broker.consumer(self.spec())
        await broker.publish([message(i) for i in range(3)])
        held = await self.fetch_until(consumer, 3, within=self.grace)
        await broker.close()  # without settling: the process stopped mid-work

        restarted = await make_broker("storage")
        again = await self.fetch_until(
            await restarted.consumer(self.spec()), 3, within=self.ack_wait + self.grace
        )

        assert len(held) == 3
        assert sorted(d.message_id for d in again) == ["msg-0", "msg-1", "msg-2"]

    async def test_closing_with_a_fetched_backlog_is_not_an_attempt(
        self, make_broker: BrokerFactory
    ) -> None:
        # Workers restarted again and again with a backlog: no handler settled anything, so no
        # message may reach the dead letters, however many restarts outnumber max_attempts.
        broker = await make_broker()
        spec = self.spec(max_attempts=2)
        await broker.declare(spec)
        await broker.publish([message(i) for i in range(5)])
        for _ in range(spec.max_attempts + 2):
            consumer = await broker.consumer(spec)
            held = await self.fetch_until(consumer, 5, within=self.grace)
            await consumer.close()
            assert len(held) == 5

        consumer = await broker.consumer(spec)
        got = await self.drain(consumer, 5)

        assert sorted(d.message_id for d in got) == [f"msg-{i}" for i in range(5)]
        assert all(d.attempt <= spec.max_attempts for d in got)
        assert await broker.dead_letters("workers") == []

    async def test_closing_with_unfetched_prefetch_is_not_an_attempt(
        self, make_broker: BrokerFactory
    ) -> None:
        # A member that takes one message and stops hands back whatever it had pulled ahead.
        broker = await make_broker()
        spec = self.spec(max_attempts=2)
        await broker.declare(spec)
        await broker.publish([message(i) for i in range(6)])
        taken: list[str] = []
        for _ in range(spec.max_attempts + 2):
            consumer = await broker.consumer(spec)
            [first] = await self.fetch_until(consumer, 1, within=self.grace, batch=1)
            await asyncio.sleep(self.quiet)  # the engine may pull ahead meanwhile
            await consumer.settle([(first, Ack())])
            taken.append(first.message_id)
            await consumer.close()

        consumer = await broker.consumer(spec)
        got = await self.drain(consumer, 6 - len(taken))

        assert sorted(taken + [d.message_id for d in got]) == [f"msg-{i}" for i in range(6)]
        assert all(d.attempt <= spec.max_attempts for d in got)
        assert await broker.dead_letters("workers") == []

    async def test_ephemeral_group_lives_while_a_member_fetches(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = await make_broker()
        consumer = await broker.consumer(self.spec("live", expires_after=self.expiry))
        # A member waiting on empty fetches for well past the expiry keeps the group.
        deadline = time.monotonic() + self.expiry + self.expiry_grace
        while time.monotonic() < deadline:
            assert await consumer.fetch(10, timeout=0.5) == []
        await broker.publish([message(1)])

        got = await self.drain(consumer, 1)

        assert [d.message_id for d in got] == ["msg-1"]

    async def test_ephemeral_group_is_deleted_once_no_member_fetches(
        self, make_broker: BrokerFactory
    ) -> None:
        broker = await make_broker()
        durable = await broker.consumer(self.spec("durable"))
        spec = self.spec("per-process", expires_after=self.expiry)
        member = await broker.consumer(spec)
        await broker.publish([message(1)])
        assert [d.message_id for d in await self.drain(member, 1)] == ["msg-1"]
        await member.close()  # the process is gone: nobody fetches for the group any more

        await asyncio.sleep(self.expiry + self.expiry_grace)
        await broker.publish([message(2)])  # nobody holds it for the expired group
        again = await (await make_broker()).consumer(spec)
        await broker.publish([message(3)])

        assert [d.message_id for d in await self.drain(again, 1)] == ["msg-3"]
        assert [d.message_id for d in await self.drain(durable, 3)] == ["msg-1", "msg-2", "msg-3"]
