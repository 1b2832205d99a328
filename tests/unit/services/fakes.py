"""In-memory fakes of the storage and payment ports, for unit tests of the services' handlers.

They keep the ports' promises that the handlers rely on (batch in, dict out; a write that would
make stock negative fails whole; a ledger entry is recorded once per key; a transaction or a
savepoint that raises leaves nothing behind), and nothing else: no SQL, no files.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from orderflow.domain.inventory import WarehouseStock
from orderflow.domain.money import Money
from orderflow.domain.order import OrderState, OrderStatus
from orderflow.domain.pricing import CatalogEntry
from orderflow.ports.attempts import FailedAttempt
from orderflow.ports.broker import OutgoingMessage
from orderflow.ports.errors import ConcurrentUpdateError
from orderflow.ports.inventory import HELD, RELEASED, InventoryChanges, Reservation
from orderflow.ports.ledger import CAPTURE, LedgerEntry
from orderflow.ports.orders import Change, NewOrder, OrderRow
from orderflow.ports.outbox import OutboxRow
from orderflow.ports.payments import Approved, Declined, ProviderAnswer, TransientPaymentError


@dataclass
class StoredOrder:
    state: OrderState
    version: int
    customer_id: str
    status_reason: str | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class State:
    """Everything the fake database holds; copied whole to roll a transaction back."""

    orders: dict[str, StoredOrder] = field(default_factory=dict)
    customers: dict[str, str | None] = field(default_factory=dict)
    # (sku, warehouse) -> [on_hand, reserved]; warehouses listed in order of preference
    stock: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    warehouses: list[str] = field(default_factory=list)
    reservations: dict[str, list[Reservation]] = field(default_factory=dict)
    outbox: list[OutboxRow] = field(default_factory=list)
    processed: set[tuple[str, str]] = field(default_factory=set)
    ledger: dict[str, LedgerEntry] = field(default_factory=dict)
    catalog: dict[str, CatalogEntry] = field(default_factory=dict)
    attempts: list[FailedAttempt] = field(default_factory=list)
    backlog: int = 0
    backlog_reads: int = 0
    backlog_error: Exception | None = None


class FakeOrderRepository:
    def __init__(self, state: State) -> None:
        self._s = state

    async def ensure_customers(self, ids: Sequence[tuple[str, str | None]]) -> None:
        for cid, email in ids:
            self._s.customers.setdefault(cid, email)

    async def find_by_idempotency_keys(
        self, slots: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, str | None]]:
        return {}  # the fakes do not model idempotency keys

    async def add(self, new_orders: Sequence[NewOrder], status: OrderStatus, actor: str) -> None:
        for o in new_orders:
            total = o.priced.total
            state = OrderState(o.id, status, total.amount, total.currency, o.payment_token)
            entry = _entry(1, "OrderPlaced", status, None, None, actor)
            self._s.orders[o.id] = StoredOrder(state, 1, o.customer_id, timeline=[entry])

    async def states_for_update(
        self, order_ids: Sequence[str]
    ) -> dict[str, tuple[OrderState, int]]:
        return {
            oid: (self._s.orders[oid].state, self._s.orders[oid].version)
            for oid in order_ids
            if oid in self._s.orders
        }

    async def record(self, changes: Sequence[Change]) -> None:
        for entry, version, compensated in changes:
            stored = self._s.orders[entry.order_id]
            if stored.version != version:
                raise ConcurrentUpdateError(entry.order_id)
            if entry.status != entry.previous_status:
                stored.status_reason = entry.reason
            stored.state = OrderState(
                stored.state.order_id,
                entry.status,
                stored.state.total_amount,
                stored.state.currency,
                stored.state.payment_token,
                compensated,
            )
            stored.version += 1
            stored.timeline.append(
                _entry(
                    stored.version,
                    entry.type,
                    entry.status,
                    entry.previous_status,
                    entry.reason,
                    entry.actor,
                )
            )


def _entry(
    seq: int,
    kind: str,
    status: OrderStatus,
    previous: OrderStatus | None,
    reason: str | None,
    actor: str,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "type": kind,
        "status": status.value,
        "previous_status": previous.value if previous else None,
        "reason": reason,
        "actor": actor,
    }


class FakeOrderQueries:
    def __init__(self, state: State) -> None:
        self._s = state

    async def get(self, order_id: str, customer_id: str | None) -> OrderRow | None:
        stored = self._s.orders.get(order_id)
        if stored is None or customer_id not in (None, stored.customer_id):
            return None
        return {
            "id": order_id,
            "customer_id": stored.customer_id,
            "status": stored.state.status.value,
            "status_reason": stored.status_reason,
            "timeline": list(stored.timeline),
        }

    async def page(
        self,
        customer_id: str | None,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[OrderRow]:
        raise NotImplementedError("not needed by the handlers")


class FakeInventory:
    def __init__(self, state: State) -> None:
        self._s = state

    async def levels(self, skus: Sequence[str]) -> dict[str, list[WarehouseStock]]:
        levels: dict[str, list[WarehouseStock]] = {}
        for sku in sorted(set(skus)):
            for wh in self._s.warehouses:
                if (sku, wh) in self._s.stock:
                    on_hand, reserved = self._s.stock[sku, wh]
                    levels.setdefault(sku, []).append(WarehouseStock(wh, on_hand, reserved))
        return levels

    async def reservations(self, order_ids: Sequence[str]) -> dict[str, list[Reservation]]:
        return {
            oid: list(self._s.reservations[oid]) for oid in order_ids if oid in self._s.reservations
        }

    async def write(self, changes: InventoryChanges) -> None:
        for key, (d_on_hand, d_reserved) in changes.stock_deltas.items():
            level = self._s.stock[key]
            level[0] += d_on_hand
            level[1] += d_reserved
            # The database's CHECK constraints: the transaction fails, so nothing is kept.
            if level[1] < 0 or level[0] < level[1]:
                raise ValueError(f"stock of {key} would be {level}")
        for oid in {oid for oid, _ in changes.new_reservations}:
            held = [r for r in self._s.reservations.get(oid, []) if r.status != RELEASED]
            self._s.reservations[oid] = held
        for oid, a in changes.new_reservations:
            self._s.reservations.setdefault(oid, []).append(
                Reservation(a.sku, a.warehouse, a.quantity, HELD)
            )
        for oid, old, new in changes.status_changes:
            self._s.reservations[oid] = [
                Reservation(r.sku, r.warehouse, r.quantity, new) if r.status == old else r
                for r in self._s.reservations[oid]
            ]


class FakeOutbox:
    def __init__(self, state: State) -> None:
        self._s = state

    async def add(self, messages: Sequence[OutgoingMessage]) -> None:
        start = max((r.id for r in self._s.outbox), default=0) + 1
        self._s.outbox.extend(OutboxRow(start + i, msg) for i, msg in enumerate(messages))

    async def oldest(self, limit: int, *, claim: bool = False) -> list[OutboxRow]:
        return self._s.outbox[:limit]

    async def depth(self, cap: int) -> int:
        return min(len(self._s.outbox), cap)

    async def remove(self, ids: Sequence[int]) -> None:
        gone = set(ids)
        self._s.outbox = [r for r in self._s.outbox if r.id not in gone]


class FakeProcessedMessages:
    def __init__(self, state: State, consumer: str) -> None:
        self._s = state
        self._consumer = consumer

    async def seen(self, message_ids: Sequence[str]) -> set[str]:
        return {mid for mid in message_ids if (self._consumer, mid) in self._s.processed}

    async def forget(self, message_ids: Sequence[str]) -> None:
        self._s.processed -= {(self._consumer, mid) for mid in message_ids}

    async def mark(self, message_ids: Sequence[str]) -> None:
        for mid in message_ids:
            key = (self._consumer, mid)
            if key in self._s.processed:
                raise ValueError(f"duplicate key {key}")  # the primary key's promise
            self._s.processed.add(key)


class FakeRetention:
    async def prune(self, before: datetime, *, keep: Sequence[str], limit: int) -> int:
        return 0  # the fakes keep no times


class FakePaymentLedger:
    def __init__(self, state: State) -> None:
        self._s = state

    async def record(self, entries: Sequence[LedgerEntry]) -> None:
        for e in entries:
            self._s.ledger.setdefault(e.idempotency_key, e)

    async def capture_of(self, order_id: str) -> LedgerEntry | None:
        return next(
            (e for e in self._s.ledger.values() if e.order_id == order_id and e.kind == CAPTURE),
            None,
        )


class FakeCatalog:
    def __init__(self, state: State) -> None:
        self._s = state

    async def entries(self) -> dict[str, CatalogEntry]:
        return dict(self._s.catalog)

    async def products_with_stock(self, after_sku: str | None, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError("not needed by the handlers")


class FakeAttemptLog:
    def __init__(self, state: State) -> None:
        self._s = state

    async def record(self, attempts: Sequence[FailedAttempt]) -> None:
        self._s.attempts += [replace(a, failed_at=datetime.now(UTC)) for a in attempts]

    async def of(self, group: str, message_ids: Sequence[str]) -> dict[str, list[FailedAttempt]]:
        found: dict[str, list[FailedAttempt]] = {}
        for a in self._s.attempts:
            if a.group == group and a.message_id in message_ids:
                found.setdefault(a.message_id, []).append(a)
        return found


class FakeBacklog:
    """The pipeline's backlog as a number a test sets; counts its readings, or fails them."""

    def __init__(self, state: State) -> None:
        self._state = state

    async def size(self) -> int:
        self._state.backlog_reads += 1
        if self._state.backlog_error is not None:
            raise self._state.backlog_error
        return self._state.backlog


class FakeTransaction:
    """Both the read and the write side of the storage port."""

    def __init__(self, storage: FakeStorage) -> None:
        self._storage = storage
        s = storage.state
        self.queries = FakeOrderQueries(s)
        self.catalog = FakeCatalog(s)
        self.payments = FakePaymentLedger(s)
        self.outbox = FakeOutbox(s)
        self.orders = FakeOrderRepository(s)
        self.inventory = FakeInventory(s)
        self.retention = FakeRetention()
        self.attempts = FakeAttemptLog(s)
        self.backlog = FakeBacklog(s)

    def processed(self, consumer: str) -> FakeProcessedMessages:
        return FakeProcessedMessages(self._storage.state, consumer)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self._storage.undone_on_error():
            yield


class FakeStorage:
    claims_rows = False

    def __init__(self) -> None:
        self.state = State()
        self.transactions = 0  # write transactions committed

    @asynccontextmanager
    async def undone_on_error(self) -> AsyncIterator[None]:
        before = copy.deepcopy(self.state)
        try:
            yield
        except BaseException:
            # Restored in place: repositories handed out keep pointing at the live state.
            self.state.__dict__.update(before.__dict__)
            raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[FakeTransaction]:
        yield FakeTransaction(self)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[FakeTransaction]:
        async with self.undone_on_error():
            yield FakeTransaction(self)
        self.transactions += 1

    async def ping(self) -> None:
        return None

    async def dispose(self) -> None:
        return None

    # --- setting up and looking in ---------------------------------------------------------

    def add_stock(self, sku: str, **per_warehouse: int) -> None:
        for wh, units in per_warehouse.items():
            if wh not in self.state.warehouses:
                self.state.warehouses.append(wh)
            self.state.stock[sku, wh] = [units, 0]

    def free(self, sku: str) -> int:
        return sum(on - res for (s, _), (on, res) in self.state.stock.items() if s == sku)

    def reserved(self, sku: str) -> int:
        return sum(res for (s, _), (_, res) in self.state.stock.items() if s == sku)

    def on_hand(self, sku: str) -> int:
        return sum(on for (s, _), (on, _) in self.state.stock.items() if s == sku)

    def status(self, order_id: str) -> OrderStatus:
        return self.state.orders[order_id].state.status

    def timeline(self, order_id: str) -> list[tuple[str, str, str | None]]:
        """(type, status after, reason) per entry."""
        return [(e["type"], e["status"], e["reason"]) for e in self.state.orders[order_id].timeline]


@dataclass
class FakePaymentGateway:
    """A provider that remembers each idempotency key's answer. Tokens: "tok_visa" approves,
    "tok_decline" declines; `refunds_declined` makes it refuse refunds; `transient_failures`
    fails that many calls first; `hangs` makes authorizations never answer (a provider outage
    that times out)."""

    refunds_declined: bool = False
    hangs: bool = False
    transient_failures: int = 0
    answers: dict[str, ProviderAnswer] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)  # idempotency keys, in call order
    amounts: dict[str, Money] = field(default_factory=dict)  # authorization -> amount
    _n: int = 0

    async def authorize(self, *, idempotency_key: str, amount: Money, token: str) -> ProviderAnswer:
        if self.hangs:
            self.calls.append(idempotency_key)
            await asyncio.Event().wait()

        def answer() -> ProviderAnswer:
            if token != "tok_visa":
                return Declined("card_declined")
            reference = self._reference("auth")
            self.amounts[reference] = amount
            return Approved(reference)

        return self._once(idempotency_key, answer)

    async def capture(self, *, idempotency_key: str, authorization: str) -> ProviderAnswer:
        def answer() -> ProviderAnswer:
            if authorization not in self.amounts:
                return Declined("unknown authorization")
            return Approved(self._reference("capt"))

        return self._once(idempotency_key, answer)

    async def refund(self, *, idempotency_key: str, capture: str) -> ProviderAnswer:
        def answer() -> ProviderAnswer:
            if self.refunds_declined:
                return Declined("refund_window_closed")
            return Approved(self._reference("refu"))

        return self._once(idempotency_key, answer)

    def _once(self, key: str, decide: Any) -> ProviderAnswer:
        self.calls.append(key)
        if self.transient_failures:
            self.transient_failures -= 1
            raise TransientPaymentError("simulated timeout")
        if key not in self.answers:
            self.answers[key] = decide()
        return self.answers[key]

    def _reference(self, kind: str) -> str:
        self._n += 1
        return f"{kind}_{self._n}"

    def approved(self, kind: str) -> list[str]:
        """Keys of `kind` ("capture", "refund") the provider approved: the money that moved."""
        return sorted(
            k for k, a in self.answers.items() if k.startswith(kind) and isinstance(a, Approved)
        )
