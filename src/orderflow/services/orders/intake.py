"""OrderIntake: durable acceptance of new orders with group commit.

Concurrent submissions are queued to one writer task that commits them together: the order, its
lines, its first timeline entry and its outbox messages for a whole batch in ONE transaction. Each
caller is answered only after that commit, so a 202 always means durable, while the cost of a
commit (an fsync) is shared by every order in the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from orderflow.domain import messages as m
from orderflow.domain.order import NEW_ORDER_STATUS, place
from orderflow.messaging.envelope import encode
from orderflow.observability import metrics
from orderflow.ports.errors import WriteConflictError
from orderflow.ports.orders import NewOrder
from orderflow.ports.storage import Storage

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Accepted:
    order_id: str
    replayed: bool  # an earlier request with the same idempotency key made this order


class OverloadedError(Exception):
    """More orders are waiting for a commit than the intake will hold: refuse, do not queue."""


class IdempotencyConflictError(Exception):
    """The idempotency key was used before with a different request body."""


@dataclass
class _Pending:
    order: NewOrder
    email: str | None
    future: asyncio.Future[Accepted]


class OrderIntake:
    def __init__(
        self,
        storage: Storage,
        max_batch: int = 256,
        max_waiting: int = 4096,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._storage = storage
        self._on_committed = on_committed  # the outbox has rows: wake the relay
        self._max_batch = max_batch
        self._max_waiting = max_waiting
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="order-intake")

    async def stop(self) -> None:
        if self._task:
            # The sentinel queues behind every waiting order: those callers still get their 202.
            await self._queue.put(None)
            await self._task

    async def submit(self, order: NewOrder, email: str | None) -> Accepted:
        if self._queue.qsize() >= self._max_waiting:
            raise OverloadedError(f"{self._max_waiting} orders are already waiting for a commit")
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(order, email, future))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            try:
                await self._commit(batch)
            except Exception as exc:
                if not isinstance(exc, WriteConflictError):
                    log.warning("batch commit failed; committing one by one", error=repr(exc))
                # A racing writer took an idempotency key in this batch, or the database refused
                # one order: settle one by one, so one order's failure is never its neighbours'.
                for pending in batch:
                    if not pending.future.done():
                        await self._commit_alone(pending)

    async def _commit_alone(self, pending: _Pending) -> None:
        try:
            await self._commit([pending])
        except Exception as exc:
            log.exception("order intake failed", order_id=pending.order.id, error=repr(exc))
            if not pending.future.done():
                pending.future.set_exception(exc)

    async def _commit(self, batch: list[_Pending]) -> None:
        results: list[tuple[_Pending, Accepted | Exception]] = []
        async with self._storage.write() as tx:
            repo = tx.orders
            fresh: list[_Pending] = []
            slots = {slot for p in batch if (slot := _slot(p)) is not None}
            stored = await repo.find_by_idempotency_keys(sorted(slots))
            keys_in_batch: dict[tuple[str, str], _Pending] = {}
            for p in batch:
                outcome = _replay(p, stored, keys_in_batch)
                if outcome is None:
                    fresh.append(p)
                else:
                    results.append((p, outcome))
            if fresh:
                await repo.ensure_customers([(p.order.customer_id, p.email) for p in fresh])
                await repo.add([p.order for p in fresh], NEW_ORDER_STATUS, actor="api")
                await tx.outbox.add(
                    [encode(msg) for p in fresh for msg in _first_messages(p.order)]
                )
                results.extend((p, Accepted(p.order.id, replayed=False)) for p in fresh)
        metrics.order_accepted(len(fresh))  # committed: the block above raised otherwise
        if fresh:
            self._on_committed()
        for p, result in results:
            if p.future.done():
                continue  # the caller went away (cancelled); the order is committed all the same
            if isinstance(result, Exception):
                p.future.set_exception(result)
            else:
                p.future.set_result(result)


def _slot(p: _Pending) -> tuple[str, str] | None:
    key = p.order.idempotency_key
    return None if key is None else (p.order.customer_id, key)


def _replay(
    p: _Pending,
    stored: dict[tuple[str, str], tuple[str, str | None]],
    keys_in_batch: dict[tuple[str, str], _Pending],
) -> Accepted | Exception | None:
    """What an idempotency key already stands for (in the database, or earlier in this batch):
    None means a new order."""
    slot = _slot(p)
    if slot is None:
        return None
    earlier = keys_in_batch.get(slot)
    known = (earlier.order.id, earlier.order.request_hash) if earlier else stored.get(slot)
    if known is None:
        keys_in_batch[slot] = p
        return None
    order_id, request_hash = known
    if request_hash != p.order.request_hash:
        return IdempotencyConflictError(slot[1])
    return Accepted(order_id, replayed=True)


def _first_messages(order: NewOrder) -> list[m.Message]:
    lines = tuple(m.Line(line.sku, line.quantity) for line in order.priced.lines)
    status, commands = place(order.id, lines)
    announced = m.OrderStatusChanged(order.id, status.value, None, 1, None)
    return [*commands, announced]
