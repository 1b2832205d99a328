"""The admin's dead letters over real HTTP: a real API process over a data directory whose broker
(embedded) and database the pipeline in this test process shares. The relay and the three
consumer groups run here, a round at a time until nothing moves, with an inventory handler that
fails permanently for the messages a test poisons: so each test decides exactly what dies.

Poison at the first step: the order fails holding nothing; fix the cause, replay, and it
completes. Poison after the reservation: it fails with its stock released; the replay restarts
it and it completes. Poison after payment: it fails with its stock released and its capture
refunded, a replay is refused (409) and the dead letter can be discarded. Only admins get in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from orderflow.bootstrap import (
    audit,
    build_broker,
    build_database,
    build_runner,
    build_storage,
    consumer_spec,
    declare_topology,
    redelivery_policy,
)
from orderflow.config import Settings
from orderflow.domain import messages as m
from orderflow.ports.broker import Broker, Consumer, OutgoingMessage
from orderflow.ports.storage import Storage, Writes
from orderflow.services.relay.relay import OutboxRelay
from orderflow.services.runtime.consumer import ConsumerRunner
from orderflow.services.runtime.handler import BatchResult, PermanentError
from tests.integration.api.harness import PRODUCTS, Api, assert_problem
from tests.support.system import admin, customer

DLQ = "/api/v1/admin/dead-letters"
SKU = "MUG-WHT"


Poison = set[tuple[type[m.Message], str]]


@dataclass
class Poisoned:
    """A real handler, except that it fails permanently for the (message type, order id) pairs
    in `poison`."""

    handler: Any
    poison: Poison

    @property
    def group(self) -> str:
        return str(self.handler.group)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.handler.topics)

    async def call_out(self, message: m.Message) -> Any:
        return await self.handler.call_out(message)

    async def apply(self, tx: Writes, batch: Sequence[tuple[m.Message, Any]]) -> list[BatchResult]:
        bad = [(type(msg), msg.order_id) in self.poison for msg, _ in batch]
        clean = [item for item, b in zip(batch, bad, strict=True) if not b]
        healthy = iter(await self.handler.apply(tx, clean) if clean else [])
        return [
            PermanentError(f"poisoned {type(msg).__name__}") if b else next(healthy)
            for (msg, _), b in zip(batch, bad, strict=True)
        ]


@dataclass
class Pipeline:
    storage: Storage
    broker: Broker
    poison: Poison
    stages: list[tuple[Any, Consumer]] = field(default_factory=list)

    async def run_until_quiet(self) -> None:
        """Relay and consume until a whole round moves nothing (no retries are asked for: the
        poison is permanent, so nothing waits out a delay)."""
        relay = OutboxRelay(self.storage, self.broker)
        while True:
            moved = await relay.publish_batch()
            for runner, consumer in self.stages:
                deliveries = await consumer.fetch(100, 0.0)
                if deliveries:
                    await consumer.settle(await runner.process(deliveries))
                    moved += len(deliveries)
            if not moved:
                return

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        await self.broker.publish(messages)


@asynccontextmanager
async def pipeline(api: Api) -> AsyncIterator[Pipeline]:
    settings = Settings(data_dir=api.system.data_dir)
    storage, broker = build_storage(build_database(settings)), build_broker(settings)
    await broker.connect()
    poison: Poison = set()
    stages = []
    try:
        await declare_topology(broker, settings)
        for name in ("orders", "inventory", "payment"):
            real = build_runner(name, settings, storage, broker)
            spec = consumer_spec(name, settings)
            runner = ConsumerRunner(
                Poisoned(real.handler, poison),
                spec,
                broker,
                storage,
                policy=redelivery_policy(name, settings),
            )
            stages.append((runner, await broker.consumer(spec)))
        yield Pipeline(storage, broker, poison, stages)
    finally:
        for _, consumer in stages:
            await consumer.close()
        await broker.close()
        await storage.dispose()


def available(api: Api, sku: str = SKU) -> int:
    response = api.get(PRODUCTS, customer(), limit=100)
    assert response.status_code == 200, response.text
    [product] = [p for p in response.json()["items"] if p["sku"] == sku]
    return int(product["available"])


def dead_letters_of(api: Api, order_id: str) -> list[dict[str, Any]]:
    response = api.get(DLQ, admin(), limit=200)
    assert response.status_code == 200, response.text
    return [d for d in response.json()["items"] if d["order_id"] == order_id]


async def assert_invariants(api: Api) -> None:
    """`orderflow audit`'s checks hold (money against the provider's own ledger too), also for
    orders resumed or restarted."""
    violations, _ = await audit(Settings(data_dir=api.system.data_dir))
    assert violations == []


def place(api: Api) -> str:
    response = api.place(customer(), [(SKU, 2)])
    assert response.status_code == 202, response.text
    order_id: str = response.json()["id"]
    return order_id


def timeline(api: Api, order_id: str) -> list[tuple[str, str]]:
    return [(e["type"], e["actor"]) for e in api.order(order_id, admin())["timeline"]]


async def test_a_poison_message_dead_letters_alone_and_its_replay_completes_the_order(
    api: Api,
) -> None:
    before = available(api)
    async with pipeline(api) as flow:
        poisoned, healthy = place(api), place(api)
        flow.poison.add((m.ReserveStock, poisoned))
        await flow.run_until_quiet()

        assert api.order(healthy, admin())["status"] == "confirmed"
        assert api.order(poisoned, admin())["status"] == "failed"
        assert available(api) == before - 2  # the failed order holds nothing
        [dead] = dead_letters_of(api, poisoned)
        assert (dead["group"], dead["message_type"], dead["attempts"]) == (
            "inventory",
            "ReserveStock",
            1,
        )
        assert dead["reason"] == "PermanentError: poisoned ReserveStock"

        shown = api.get(f"{DLQ}/{dead['id']}", admin())
        assert shown.status_code == 200, shown.text
        detail = shown.json()
        assert detail["order_status"] == "failed"
        assert detail["payload"]["type"] == "ReserveStock"
        assert detail["payload"]["data"]["order_id"] == poisoned
        assert [(a["attempt"], a["outcome"], a["error"]) for a in detail["attempt_log"]] == [
            (1, "dead_letter", "PermanentError: poisoned ReserveStock")
        ]

        flow.poison.clear()  # the cause is fixed
        replayed = api.http.post(f"{DLQ}/{dead['id']}/replay", headers=api.auth(admin()))
        assert replayed.status_code == 200, replayed.text
        assert replayed.json() == {"id": dead["id"], "outcome": "resumed"}
        again = api.http.post(f"{DLQ}/{dead['id']}/replay", headers=api.auth(admin()))
        assert_problem(again, 404)
        await flow.run_until_quiet()

    assert api.order(poisoned, admin())["status"] == "confirmed"
    assert available(api) == before - 4
    assert dead_letters_of(api, poisoned) == []
    events = timeline(api, poisoned)
    assert "ProcessingFailed" in [t for t, _ in events]
    assert [t for t, a in events if a.startswith("admin:")] == ["ProcessingResumed"]
    await assert_invariants(api)


async def test_an_order_dead_lettered_after_payment_fails_with_stock_and_money_given_back(
    api: Api,
) -> None:
    before = available(api)
    async with pipeline(api) as flow:
        order_id = place(api)
        flow.poison.add((m.CommitStock, order_id))
        await flow.run_until_quiet()

        doc = api.order(order_id, admin())
        assert doc["status"] == "failed"
        types = [e["type"] for e in doc["timeline"]]
        assert "PaymentCaptured" in types
        assert "StockReleased" in types
        assert "PaymentRefunded" in types
        assert available(api) == before  # released
        [dead] = dead_letters_of(api, order_id)
        assert dead["message_type"] == "CommitStock"

        refused = api.http.post(f"{DLQ}/{dead['id']}/replay", headers=api.auth(admin()))
        problem = assert_problem(refused, 409)
        assert problem["title"] == "Order cannot be resumed"
        assert "payment was captured" in problem["detail"]
        assert dead_letters_of(api, order_id) == [dead]  # still there to decide on

        discarded = api.http.delete(f"{DLQ}/{dead['id']}", headers=api.auth(admin()))
        assert discarded.status_code == 204, discarded.text
        assert_problem(api.http.delete(f"{DLQ}/{dead['id']}", headers=api.auth(admin())), 404)
        assert dead_letters_of(api, order_id) == []
        await flow.run_until_quiet()
    assert api.order(order_id, admin())["status"] == "failed"
    await assert_invariants(api)


@pytest.mark.parametrize(
    ("poison", "group"), [(m.StockReserved, "orders"), (m.CapturePayment, "payment")]
)
async def test_an_order_that_failed_after_reserving_restarts_and_completes(
    api: Api, poison: type[m.Message], group: str
) -> None:
    """Its stock was reserved and went back when it failed (the saga's StockReserved died, or
    the capture did): the replay restarts it with a new reservation, and it completes."""
    before = available(api)
    async with pipeline(api) as flow:
        order_id = place(api)
        flow.poison.add((poison, order_id))
        await flow.run_until_quiet()
        assert api.order(order_id, admin())["status"] == "failed"
        assert available(api) == before
        [dead] = dead_letters_of(api, order_id)
        assert (dead["group"], dead["message_type"]) == (group, poison.__name__)

        flow.poison.clear()
        replayed = api.http.post(f"{DLQ}/{dead['id']}/replay", headers=api.auth(admin()))
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["outcome"] == "restarted"
        assert dead_letters_of(api, order_id) == []  # superseded by the restart
        assert_problem(api.http.post(f"{DLQ}/{dead['id']}/replay", headers=api.auth(admin())), 404)
        await flow.run_until_quiet()
    doc = api.order(order_id, admin())
    assert doc["status"] == "confirmed"
    assert available(api) == before - 2
    statuses = [e["status"] for e in doc["timeline"] if e["type"] != "StockReleased"]
    assert statuses[-5:] == ["failed", "pending", "reserved", "paid", "confirmed"]
    await assert_invariants(api)


async def test_a_replay_before_the_fix_fails_again_and_can_be_replayed_again(api: Api) -> None:
    async with pipeline(api) as flow:
        order_id = place(api)
        flow.poison.add((m.ReserveStock, order_id))
        await flow.run_until_quiet()
        [first] = dead_letters_of(api, order_id)
        replayed = api.http.post(f"{DLQ}/{first['id']}/replay", headers=api.auth(admin()))
        assert replayed.json()["outcome"] == "resumed"
        await flow.run_until_quiet()  # still poisoned

        assert api.order(order_id, admin())["status"] == "failed"
        [second] = dead_letters_of(api, order_id)
        assert second["position"] > first["position"]
        await assert_invariants(api)  # failed twice, resumed once in between

        flow.poison.clear()
        replayed = api.http.post(f"{DLQ}/{second['id']}/replay", headers=api.auth(admin()))
        assert replayed.json()["outcome"] == "resumed"
        await flow.run_until_quiet()
    assert api.order(order_id, admin())["status"] == "confirmed"
    await assert_invariants(api)


async def test_dead_letters_page_and_refuse_bad_requests(api: Api) -> None:
    async with pipeline(api) as flow:
        junk = [
            OutgoingMessage(m.INVENTORY_COMMANDS, f"k-{i}", f"junk-{i}", b"not a message")
            for i in range(3)
        ]
        await flow.publish(junk)
        await flow.run_until_quiet()

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"group": "inventory", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = api.get(DLQ, admin(), **params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [d["message_id"] for d in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages >= 2
    assert len(seen) == len(set(seen))
    assert {"junk-0", "junk-1", "junk-2"} <= set(seen)
    listed = api.get(DLQ, admin(), limit=200).json()["items"]
    junk_letter = next(d for d in listed if d["message_id"] == "junk-0")
    assert (junk_letter["message_type"], junk_letter["order_id"]) == (None, None)
    shown = api.get(f"{DLQ}/{junk_letter['id']}", admin()).json()
    assert shown["payload"] == "not a message"
    assert [a["outcome"] for a in shown["attempt_log"]] == ["dead_letter"]

    assert_problem(api.get(DLQ, admin(), cursor="not-a-cursor"), 400)
    first_page = api.get(DLQ, admin(), group="inventory", limit=1).json()
    other_listing = {"group": "orders", "cursor": first_page["next_cursor"]}
    assert_problem(api.get(DLQ, admin(), **other_listing), 400)
    assert_problem(api.get(DLQ, admin(), group="no-such-group"), 404)
    assert_problem(api.get(f"{DLQ}/inventory/999999", admin()), 404)
    assert_problem(api.get(f"{DLQ}/no-such-group/1", admin()), 404)
    assert_problem(api.get(f"{DLQ}/inventory/0", admin()), 422)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", DLQ),
        ("GET", f"{DLQ}/inventory/1"),
        ("POST", f"{DLQ}/inventory/1/replay"),
        ("DELETE", f"{DLQ}/inventory/1"),
    ],
)
def test_only_admins_reach_the_dead_letters(api: Api, method: str, path: str) -> None:
    problem = assert_problem(api.http.request(method, path, headers=api.auth(customer())), 403)
    assert "administrators" in problem["detail"]
    assert_problem(api.http.request(method, path), 401)
