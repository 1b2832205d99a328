"""ConsumerRunner on fake storage: a batch is applied in one transaction, one poisonous message is
isolated in its savepoint, and what was applied before is only acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

import pytest

from orderflow.domain import messages as m
from orderflow.messaging.envelope import decode
from orderflow.ports.broker import Ack, ConsumerSpec, DeadLetter, Retry
from orderflow.ports.storage import Writes
from orderflow.services.runtime.consumer import ConsumerRunner
from orderflow.services.runtime.handler import BatchResult
from orderflow.services.runtime.retrying import Backoff, RedeliveryPolicy
from tests.unit.services.fakes import FakeStorage
from tests.unit.services.pipeline import FakeBroker, delivery


class Recorder:
    """Writes a mark per message, then fails the message about order "poison"."""

    group: ClassVar[str] = "recorder"
    topics: ClassVar[tuple[str, ...]] = (m.INVENTORY_COMMANDS,)

    def __init__(self) -> None:
        self.batches: list[int] = []

    async def call_out(self, message: m.Message) -> int:
        return len(message.order_id)

    async def apply(self, tx: Writes, batch: Sequence[tuple[m.Message, int]]) -> list[BatchResult]:
        self.batches.append(len(batch))
        await tx.processed("marks").mark([msg.order_id for msg, _ in batch])
        if any(msg.order_id == "poison" for msg, _ in batch):
            raise ValueError("poisonous")
        return [[m.StockReserved(msg.order_id)] for msg, size in batch if size]


def runner(storage: FakeStorage, handler: Recorder) -> ConsumerRunner[int]:
    return ConsumerRunner(
        handler, ConsumerSpec(handler.group, handler.topics), FakeBroker(), storage
    )


def marks(storage: FakeStorage) -> set[str]:
    return {mid for consumer, mid in storage.state.processed if consumer == "marks"}


async def test_a_poisonous_message_does_not_undo_its_neighbours() -> None:
    storage, handler = FakeStorage(), Recorder()
    batch = [delivery(m.ReleaseStock(oid)) for oid in ("a", "poison", "b")]
    outcomes = [o for _, o in await runner(storage, handler).process(batch)]
    assert handler.batches == [3, 1, 1, 1]  # the batch, then each message alone
    assert (outcomes[0], outcomes[2]) == (Ack(), Ack())
    assert isinstance(outcomes[1], Retry)
    assert marks(storage) == {"a", "b"}  # the poison's own write was rolled back
    out = [decode(r.message.payload) for r in storage.state.outbox]
    assert out == [m.StockReserved("a"), m.StockReserved("b")]


async def test_the_last_attempt_dead_letters_and_reports_the_failure_once() -> None:
    storage, handler = FakeStorage(), Recorder()
    poison = delivery(m.ReleaseStock("poison"))
    [(_, outcome)] = await runner(storage, handler).process([replace(poison, attempt=5)])
    assert isinstance(outcome, DeadLetter)
    assert "ValueError: poisonous" in outcome.reason
    [report] = [decode(r.message.payload) for r in storage.state.outbox]
    assert report == m.ProcessingFailed("poison", "recorder", outcome.reason)


async def test_a_message_applied_before_is_acknowledged_without_applying_it_again() -> None:
    storage, handler = FakeStorage(), Recorder()
    loop = runner(storage, handler)
    message = delivery(m.ReleaseStock("a"))
    assert [o for _, o in await loop.process([message])] == [Ack()]
    before = (set(storage.state.processed), list(storage.state.outbox))
    assert [o for _, o in await loop.process([replace(message, attempt=2)])] == [Ack()]
    assert handler.batches == [1]  # not handed to the handler again
    assert (storage.state.processed, storage.state.outbox) == before


async def test_a_malformed_message_is_dead_lettered_alone() -> None:
    storage, handler = FakeStorage(), Recorder()
    good = delivery(m.ReleaseStock("a"))
    bad = replace(good, payload=b"not json", message_id="m-bad")
    outcomes = [o for _, o in await runner(storage, handler).process([bad, good])]
    assert isinstance(outcomes[0], DeadLetter)
    assert outcomes[1] == Ack()
    [attempt] = storage.state.attempts
    assert (attempt.message_id, attempt.outcome) == ("m-bad", "dead_letter")
    assert attempt.error.startswith("MalformedMessageError")


async def test_every_failed_attempt_is_recorded_with_its_error() -> None:
    storage, handler = FakeStorage(), Recorder()
    loop = runner(storage, handler)
    poison, fine = delivery(m.ReleaseStock("poison")), delivery(m.ReleaseStock("a"))
    await loop.process([poison, fine])
    await loop.process([replace(poison, attempt=5)])  # the last one

    assert [
        (a.group, a.message_id, a.attempt, a.outcome, a.error) for a in storage.state.attempts
    ] == [
        ("recorder", poison.message_id, 1, "retry", "ValueError: poisonous"),
        ("recorder", poison.message_id, 5, "dead_letter", "ValueError: poisonous"),
    ]


async def test_the_groups_policy_decides_retries() -> None:
    storage, handler = FakeStorage(), Recorder()
    spec = ConsumerSpec(handler.group, handler.topics, max_attempts=2)
    policy = RedeliveryPolicy(2, Backoff(first=7.0, cap=7.0))
    loop = ConsumerRunner(handler, spec, FakeBroker(), storage, policy=policy)
    poison = delivery(m.ReleaseStock("poison"))

    [(_, first)] = await loop.process([poison])
    [(_, second)] = await loop.process([replace(poison, attempt=2)])

    assert isinstance(first, Retry)
    assert 3.5 <= first.delay <= 7.0
    assert isinstance(second, DeadLetter)
    with pytest.raises(ValueError, match="disagree"):
        ConsumerRunner(
            handler,
            ConsumerSpec(handler.group, handler.topics),
            FakeBroker(),
            storage,
            policy=policy,
        )
