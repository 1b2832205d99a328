"""`orderflow dlq list|show|replay|discard` as an operator runs it (its own process), on every
broker engine: dead letters are listed, shown with their reason, replayed once (the group gets the
message back as a first attempt) and discarded once; repeating either exits 1."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from orderflow.bootstrap import build_broker, consumer_spec, declare_topology, prepare
from orderflow.config import Settings
from orderflow.domain import messages as m
from orderflow.ports.broker import Broker, DeadLetter, OutgoingMessage
from tests.support.services import require_service


@pytest.fixture(params=["embedded", "nats", "rabbitmq"])
def broker_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        "ORDERFLOW_DATA_DIR": str(tmp_path / "data"),
        "ORDERFLOW_BROKER_PREFIX": f"clidlq{uuid.uuid4().hex[:10]}",
    }
    if request.param == "nats":
        service = require_service("nats")
        env["ORDERFLOW_BROKER_URL"] = f"nats://{service.host}:{service.port}"
    elif request.param == "rabbitmq":
        service = require_service("rabbitmq")
        env["ORDERFLOW_BROKER_URL"] = f"amqp://guest:guest@{service.host}:{service.port}/"
    yield env
    if request.param != "embedded":
        asyncio.run(_destroy(env))


async def _destroy(env: dict[str, str]) -> None:
    broker = _broker(env)
    await broker.connect()
    await declare_topology(broker, _settings(env))  # so RabbitMQ knows the queues to delete
    await broker.destroy()  # type: ignore[attr-defined]
    await broker.close()


def _settings(env: dict[str, str]) -> Settings:
    return Settings(
        data_dir=Path(env["ORDERFLOW_DATA_DIR"]),
        broker_url=env.get("ORDERFLOW_BROKER_URL", ""),
        broker_prefix=env["ORDERFLOW_BROKER_PREFIX"],
    )


def _broker(env: dict[str, str]) -> Broker:
    return build_broker(_settings(env))


def orderflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orderflow", "dlq", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def bury_two(env: dict[str, str]) -> None:
    """Two commands for inventory, both dead-lettered by an inventory member."""
    settings = _settings(env)
    await prepare(settings)
    broker = _broker(env)
    await broker.connect()
    try:
        await declare_topology(broker, settings)
        consumer = await broker.consumer(consumer_spec("inventory", settings))
        await broker.publish(
            [OutgoingMessage(m.INVENTORY_COMMANDS, f"o-{i}", f"cmd-{i}", b"{}") for i in (1, 2)]
        )
        taken = []
        while len(taken) < 2:
            taken += await consumer.fetch(10, 5.0)
        await consumer.settle([(d, DeadLetter(f"broken {d.message_id}")) for d in taken])
        while len(await broker.dead_letters("inventory")) < 2:
            assert await consumer.fetch(10, 0.1) == []
        await consumer.close()
    finally:
        await broker.close()


async def redelivered(env: dict[str, str]) -> list[tuple[str, int]]:
    settings = _settings(env)
    broker = _broker(env)
    await broker.connect()
    try:
        consumer = await broker.consumer(consumer_spec("inventory", settings))
        got = await consumer.fetch(10, 10.0)
        await consumer.close()
        return [(d.message_id, d.attempt) for d in got]
    finally:
        await broker.close()


def test_an_operator_lists_shows_replays_and_discards(broker_env: dict[str, str]) -> None:
    asyncio.run(bury_two(broker_env))

    listed = orderflow(broker_env, "list", "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["group"], r["message_id"], r["reason"]) for r in rows] == [
        ("inventory", "cmd-1", "broken cmd-1"),
        ("inventory", "cmd-2", "broken cmd-2"),
    ]
    first, second = rows[0]["id"], rows[1]["id"]
    table = orderflow(broker_env, "list")
    assert first in table.stdout
    assert "broken cmd-2" in table.stdout

    shown = orderflow(broker_env, "show", first)
    assert shown.returncode == 0, shown.stderr[-3000:]
    detail = orjson.loads(shown.stdout)
    assert (detail["message_id"], detail["payload"], detail["reason"]) == (
        "cmd-1",
        {},
        "broken cmd-1",
    )

    replayed = orderflow(broker_env, "replay", first)
    assert replayed.returncode == 0, replayed.stderr[-3000:]
    assert f"replayed {first}" in replayed.stdout
    again = orderflow(broker_env, "replay", first)
    assert again.returncode == 1
    assert f"no dead letter inventory/{first.split('/')[1]}" in again.stderr
    assert asyncio.run(redelivered(broker_env)) == [("cmd-1", 1)]

    discarded = orderflow(broker_env, "discard", second)
    assert discarded.returncode == 0, discarded.stderr[-3000:]
    assert orderflow(broker_env, "discard", second).returncode == 1
    empty = orderflow(broker_env, "list")
    assert empty.stdout.strip() == "no dead letters"


def test_a_malformed_id_is_refused(tmp_path: Path) -> None:
    env = {"ORDERFLOW_DATA_DIR": str(tmp_path / "data"), "ORDERFLOW_BROKER_PREFIX": "x"}
    done = orderflow(env, "show", "inventory-7")
    assert done.returncode == 2
    assert "<group>/<position>" in done.stderr
