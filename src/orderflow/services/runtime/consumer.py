"""The consumer loop: fetch a batch, apply it in one transaction, settle it, wake the relay.

Exactly-once effects on top of at-least-once delivery: a message's effects, the messages it causes
(written to the outbox) and its id in processed_messages commit together, so a redelivered message
is recognised and only acknowledged. A batch is applied at once; if that fails, its messages are
applied one by one, each in a savepoint, so one failure does not undo its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import structlog

from orderflow.domain.messages import Message, ProcessingFailed
from orderflow.messaging.envelope import MalformedMessageError, decode, encode
from orderflow.observability import metrics
from orderflow.ports.attempts import AttemptOutcome, FailedAttempt
from orderflow.ports.broker import Ack, Broker, ConsumerSpec, DeadLetter, Delivery, Outcome, Retry
from orderflow.ports.storage import Storage, Writes
from orderflow.services.runtime.dead_letters import REPORTED_BY, report_key
from orderflow.services.runtime.handler import BatchResult, Handler
from orderflow.services.runtime.retrying import RedeliveryPolicy, wait_until_reachable
from orderflow.services.runtime.throttle import Throttle, Unthrottled

log = structlog.get_logger()

T = TypeVar("T")

_OUTCOME_NAMES: dict[type[Outcome], str] = {Ack: "ack", Retry: "retry", DeadLetter: "dead_letter"}


class ConsumerRunner(Generic[T]):
    """Runs one handler; T is what its call-out answers, handed unchanged to its `apply`."""

    def __init__(
        self,
        handler: Handler[T],
        spec: ConsumerSpec,
        broker: Broker,
        storage: Storage,
        *,
        policy: RedeliveryPolicy | None = None,
        on_committed: Callable[[], None] = lambda: None,
        throttle: Throttle | None = None,
    ) -> None:
        self.handler = handler
        self.spec = spec
        self._broker = broker
        self._storage = storage
        self._batch_size = spec.max_in_flight
        # The broker counts attempts against spec.max_attempts: the policy must agree with it.
        self._policy = policy or RedeliveryPolicy(spec.max_attempts)
        if self._policy.max_attempts != spec.max_attempts:
            raise ValueError("the redelivery policy and the consumer spec disagree on attempts")
        self._on_committed = on_committed
        self._throttle = throttle or Unthrottled()

    async def run(self, stop: asyncio.Event) -> None:
        # After a database outage (the loop is started again when one ends it), fetch nothing
        # until the database answers: each batch taken meanwhile would fail and go back to the
        # broker as one more attempt, and enough of them dead-letter healthy orders.
        if not await self._database_answers(stop):
            return
        consumer = await self._broker.consumer(self.spec)
        log.info("consumer started", group=self.spec.group, topics=self.spec.topics)
        try:
            while not stop.is_set():
                if await self._held_off(stop):
                    continue
                limit = self._throttle.batch_limit() or self._batch_size
                deliveries = await consumer.fetch(min(limit, self._batch_size), 0.5)
                if deliveries:
                    started = time.perf_counter()
                    outcomes = await self.process(deliveries)
                    await consumer.settle(outcomes)
                    self._on_committed()
                    self._measure(outcomes, time.perf_counter() - started)
        finally:
            await consumer.close()
            log.info("consumer stopped", group=self.spec.group)

    def _measure(self, outcomes: Sequence[tuple[Delivery, Outcome]], seconds: float) -> None:
        """Counted once settled: a batch that fails before is fetched (and counted) again."""
        kinds = Counter(_OUTCOME_NAMES[type(outcome)] for _, outcome in outcomes)
        again = sum(1 for delivery, _ in outcomes if delivery.attempt > 1)
        metrics.batch_handled(self.spec.group, seconds, kinds, redelivered=again)

    async def _held_off(self, stop: asyncio.Event) -> bool:
        """Wait (fetching nothing) while the throttle says so; True if it did."""
        wait = self._throttle.hold_off()
        if wait <= 0:
            return False
        log.info("fetching nothing while a dependency fails", group=self.spec.group, wait=wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
        return True

    async def _database_answers(self, stop: asyncio.Event) -> bool:
        """Wait until the database answers; False if asked to stop first."""
        return await wait_until_reachable("database", self._storage.ping, stop)

    async def process(self, deliveries: Sequence[Delivery]) -> list[tuple[Delivery, Outcome]]:
        outcomes: dict[int, Outcome] = {}
        decoded: list[tuple[int, Delivery, Message]] = []
        failures: list[FailedAttempt] = []
        for i, delivery in enumerate(deliveries):
            try:
                decoded.append((i, delivery, decode(delivery.payload)))
            except MalformedMessageError as exc:
                log.error("malformed message", message_id=delivery.message_id, error=str(exc))
                outcomes[i] = DeadLetter(str(exc))
                failures.append(self._attempt(delivery, outcomes[i], exc))
        called: list[T | BaseException] = await asyncio.gather(
            *(self.handler.call_out(msg) for _, _, msg in decoded), return_exceptions=True
        )
        produced: list[Message] = []
        reported: list[str] = []  # dead letters reported here, so the sweep does not again
        async with self._storage.write() as tx:
            processed = tx.processed(self.spec.group)
            seen = await processed.seen([d.message_id for _, d, _ in decoded])
            todo: list[tuple[int, Delivery, Message, T]] = []
            for (i, delivery, message), result in zip(decoded, called, strict=True):
                if delivery.message_id in seen:
                    log.info("duplicate delivery acknowledged", order_id=message.order_id)
                    outcomes[i] = Ack()
                elif isinstance(result, BaseException):
                    outcomes[i] = self._failed(delivery, message, result, produced, reported)
                    failures.append(self._attempt(delivery, outcomes[i], result))
                else:
                    todo.append((i, delivery, message, result))
            results = await self._apply(tx, todo)
            done: list[str] = []
            for (i, delivery, message, _), applied in zip(todo, results, strict=True):
                if isinstance(applied, Exception):
                    outcomes[i] = self._failed(delivery, message, applied, produced, reported)
                    failures.append(self._attempt(delivery, outcomes[i], applied))
                else:
                    outcomes[i] = Ack()
                    done.append(delivery.message_id)
                    produced.extend(applied)
            await processed.mark(done)
            # A dead letter decided again (its first settle was lost to a crash after the
            # commit) was reported the first time.
            reports = tx.processed(REPORTED_BY)
            already = await reports.seen(reported) if reported else set()
            await reports.mark(sorted(set(reported) - already))
            await tx.outbox.add([encode(m) for m in produced])
            await tx.attempts.record(failures)
        return [(d, outcomes[i]) for i, d in enumerate(deliveries)]

    async def _apply(
        self, tx: Writes, todo: Sequence[tuple[int, Delivery, Message, T]]
    ) -> list[BatchResult]:
        """The whole batch at once; if that fails, each message alone in its own savepoint."""
        if not todo:
            return []
        items = [(message, called) for _, _, message, called in todo]
        try:
            async with tx.savepoint():
                return await self.handler.apply(tx, items)
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            log.warning("batch failed; retrying message by message", error=repr(exc))
        results: list[BatchResult] = []
        for item in items:
            try:
                async with tx.savepoint():
                    results.extend(await self.handler.apply(tx, [item]))
            except Exception as exc:
                results.append(exc)
        return results

    def _failed(
        self,
        delivery: Delivery,
        message: Message,
        exc: BaseException,
        produced: list[Message],
        reported: list[str],
    ) -> Outcome:
        with structlog.contextvars.bound_contextvars(
            order_id=message.order_id, message_type=type(message).__name__
        ):
            outcome = self._failure_outcome(delivery, exc)
            if isinstance(outcome, DeadLetter):
                log.error("dead-lettered", attempt=delivery.attempt, reason=outcome.reason)
                reported.append(report_key(self.spec.group, delivery.message_id))
                # A failure report that fails (its order is unknown here) is not reported in
                # turn: that would loop forever.
                if not isinstance(message, ProcessingFailed):
                    failed = ProcessingFailed(message.order_id, self.spec.group, outcome.reason)
                    produced.append(failed)
            else:
                log.warning("will retry", attempt=delivery.attempt, error=repr(exc))
        return outcome

    def _failure_outcome(self, delivery: Delivery, exc: BaseException) -> Outcome:
        return self._policy.outcome(delivery.attempt, exc)

    def _attempt(self, delivery: Delivery, outcome: Outcome, exc: BaseException) -> FailedAttempt:
        kind: AttemptOutcome = "dead_letter" if isinstance(outcome, DeadLetter) else "retry"
        error = f"{type(exc).__name__}: {exc}"
        return FailedAttempt(self.spec.group, delivery.message_id, delivery.attempt, kind, error)
