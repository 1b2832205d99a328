"""The order pipeline on fakes: the real saga, inventory and payment handlers, each run by the
real ConsumerRunner over one FakeStorage, with the outbox relayed to them in rounds."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from orderflow.domain import messages as m
from orderflow.domain.money import Money
from orderflow.domain.pricing import CatalogEntry, price_order
from orderflow.messaging.envelope import decode, encode
from orderflow.ports.broker import (
    Consumer,
    ConsumerSpec,
    DeadLetterRecord,
    Delivery,
    Outcome,
    OutgoingMessage,
)
from orderflow.ports.orders import NewOrder
from orderflow.services.inventory.handler import InventoryHandler
from orderflow.services.orders.intake import OrderIntake
from orderflow.services.orders.saga import OrderSaga
from orderflow.services.payment.handler import PaymentHandler
from orderflow.services.runtime.consumer import ConsumerRunner
from tests.unit.services.fakes import FakePaymentGateway, FakeStorage

PRICES = {
    "MUG": CatalogEntry("MUG", "Mug", Money(1200, "USD")),
    "TEE": CatalogEntry("TEE", "Tee", Money(4500, "USD")),
}


class FakeBroker:
    """The runners' broker is only used by their fetch loop, which these tests do not run: the
    pipeline hands deliveries to `ConsumerRunner.process` itself."""

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def declare(self, spec: ConsumerSpec) -> None:
        return None

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        raise AssertionError("the pipeline relays the outbox itself")

    async def consumer(self, spec: ConsumerSpec) -> Consumer:
        raise AssertionError("the pipeline delivers to the runners itself")

    async def dead_letters(
        self, group: str, limit: int = 100, after: int = 0
    ) -> list[DeadLetterRecord]:
        return []

    async def dead_letter(self, group: str, position: int) -> DeadLetterRecord | None:
        return None

    async def replay_dead_letter(self, group: str, position: int) -> bool:
        return False

    async def discard_dead_letter(self, group: str, position: int) -> bool:
        return False

    async def ping(self) -> None:
        return None

    async def backlog(self, spec: ConsumerSpec) -> int:
        return 0


def delivery(message: OutgoingMessage | m.Message, attempt: int = 1) -> Delivery:
    """A delivery of an outbox row's message, or of a message encoded now (a new id)."""
    out = encode(message) if isinstance(message, m.Message) else message
    return Delivery(out.topic, out.key, out.message_id, out.payload, attempt, {}, None)


class Pipeline:
    def __init__(self, gateway: FakePaymentGateway | None = None) -> None:
        self.storage = FakeStorage()
        self.gateway = gateway or FakePaymentGateway()
        broker, storage = FakeBroker(), self.storage
        saga, inventory = OrderSaga(), InventoryHandler()
        payment = PaymentHandler(self.gateway, storage)
        self.saga = ConsumerRunner(saga, _spec(saga), broker, storage)
        self.inventory = ConsumerRunner(inventory, _spec(inventory), broker, storage)
        self.payment = ConsumerRunner(payment, _spec(payment), broker, storage)
        self.published: list[m.Message] = []
        self.outcomes: list[tuple[m.Message, Outcome]] = []

    async def place(self, *lines: tuple[str, int], token: str = "tok_visa") -> str:
        """An order through the real intake; returns its id once it is stored."""
        order = NewOrder(
            str(uuid.uuid4()), "customer-1", price_order(lines, PRICES), token, {}, None, None
        )
        intake = OrderIntake(self.storage)
        intake.start()
        try:
            await intake.submit(order, None)
        finally:
            await intake.stop()
        return order.id

    async def round(self) -> int:
        """Relay what the outbox holds to every group reading its topic; returns how many."""
        rows, self.storage.state.outbox = self.storage.state.outbox, []
        self.published.extend(decode(r.message.payload) for r in rows)
        for runner in (self.saga, self.inventory, self.payment):
            mine = [delivery(r.message) for r in rows if r.message.topic in runner.spec.topics]
            if mine:
                for d, outcome in await runner.process(mine):
                    self.outcomes.append((decode(d.payload), outcome))
        return len(rows)

    async def drain(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            if not await self.round():
                return
        raise AssertionError("the pipeline did not settle")

    def sent(self, kind: type[m.Message], order_id: str) -> list[m.Message]:
        return [msg for msg in self.published if isinstance(msg, kind) and msg.order_id == order_id]


def _spec(handler: OrderSaga | InventoryHandler | PaymentHandler) -> ConsumerSpec:
    return ConsumerSpec(handler.group, handler.topics)
