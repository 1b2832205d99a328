"""The embedded (SQLite) engine: the broker contract, plus what only a file-based engine does."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from orderflow.adapters.broker import BrokerSettings, broker_from_url
from orderflow.adapters.broker.embedded import EmbeddedBroker
from orderflow.config import Settings
from orderflow.ports.broker import Ack, Broker, ConsumerSpec, Delivery
from tests.contract.broker_contract import TOPIC, BrokerContract, BrokerFactory, message


@pytest.fixture
async def embedded_factory(tmp_path: Path) -> AsyncIterator[BrokerFactory]:
    made: list[EmbeddedBroker] = []

    async def make(name: str = "main") -> Broker:
        broker = broker_from_url(f"embedded://{tmp_path / name}.db")
        assert isinstance(broker, EmbeddedBroker)  # the engine registered for the scheme
        await broker.connect()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


class TestEmbeddedBroker(BrokerContract):
    @pytest.fixture
    def make_broker(self, embedded_factory: BrokerFactory) -> BrokerFactory:
        return embedded_factory


def test_url_names_an_absolute_file(tmp_path: Path) -> None:
    three = EmbeddedBroker.from_url(f"embedded://{tmp_path}/broker.db")
    four = EmbeddedBroker.from_url(f"embedded:///{tmp_path}/broker.db?synchronous=normal")

    assert three.path == four.path == tmp_path / "broker.db"
    with pytest.raises(ValueError, match="absolute"):
        EmbeddedBroker.from_url("embedded://var/broker.db")
    with pytest.raises(ValueError, match="synchronous"):
        EmbeddedBroker.from_url(f"embedded://{tmp_path}/broker.db?synchronous=off")


def test_the_registry_builds_the_default_engine_from_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)

    broker = broker_from_url(settings.broker_url, BrokerSettings(settings.broker_prefix))

    # On SQLite the broker's tables live in the database's own file (one WAL for the pipeline).
    assert isinstance(broker, EmbeddedBroker)
    assert broker.path == (tmp_path / "orderflow.db").resolve()
    assert settings.pipeline_in_one_file


def test_beside_postgresql_the_default_engine_has_a_file_of_its_own(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://u@db.example/orders")

    broker = broker_from_url(settings.broker_url, BrokerSettings(settings.broker_prefix))

    assert isinstance(broker, EmbeddedBroker)
    assert broker.path == (tmp_path / "broker.db").resolve()
    assert not settings.pipeline_in_one_file


async def test_closing_a_consumer_hands_its_leases_back(embedded_factory: BrokerFactory) -> None:
    broker = await embedded_factory()
    spec = ConsumerSpec("workers", (TOPIC,), ack_wait=30.0)
    leaving = await broker.consumer(spec)
    staying = await broker.consumer(spec)
    await broker.publish([message(1), message(2)])
    held = await leaving.fetch(10, timeout=1.0)

    await leaving.close()
    again = await staying.fetch(10, timeout=1.0)

    assert len(held) == 2
    # Long before ack_wait, and a graceful stop does not use up an attempt.
    assert sorted((d.message_id, d.attempt) for d in again) == [("msg-1", 1), ("msg-2", 1)]


async def test_a_message_id_is_new_again_after_the_dedup_window(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker.db", dedup_window=0.2)
    await broker.connect()
    try:
        consumer = await broker.consumer(ConsumerSpec("workers", (TOPIC,)))
        await broker.publish([message(1)])
        await broker.publish([message(1)])
        first = await consumer.fetch(10, timeout=1.0)
        await consumer.settle([(d, Ack()) for d in first])
        await asyncio.sleep(0.3)
        await broker.publish([message(1)])
        second = await consumer.fetch(10, timeout=1.0)
    finally:
        await broker.close()

    assert [d.message_id for d in first] == [d.message_id for d in second] == ["msg-1"]


# A group member in its own OS process: "share" acks what it gets and exits once idle;
# "hold" leases `count` messages, reports them and then hangs, never settling.
WORKER = """
import asyncio, json, sys
from orderflow.adapters.broker.embedded import EmbeddedBroker
from orderflow.ports.broker import Ack, ConsumerSpec

async def main(path, mode, ack_wait, count):
    broker = EmbeddedBroker(path)
    await broker.connect()
    consumer = await broker.consumer(ConsumerSpec("workers", ("orders.placed",), ack_wait=ack_wait))
    print("ready", flush=True)
    got = []
    while mode == "hold" and len(got) < count:
        got += await consumer.fetch(100, timeout=10.0)
    if mode == "hold":
        print(json.dumps([d.message_id for d in got]), flush=True)
        await asyncio.sleep(3600)
    while batch := await consumer.fetch(10, timeout=1.0 if got else 10.0):
        got += batch
        await asyncio.sleep(0.005)  # some work, so the members interleave
        await consumer.settle([(d, Ack()) for d in batch])
        print(json.dumps([d.message_id for d in batch]), flush=True)
    await broker.close()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
"""


@asynccontextmanager
async def worker_process(
    path: Path, mode: str, ack_wait: float = 30.0, count: int = 0
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, str(path), mode, str(ack_wait), str(count),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert await read_line(process) == "ready"
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), timeout=20.0)).decode().strip()


async def test_members_in_separate_processes_share_the_work(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    publisher = EmbeddedBroker(path)
    await publisher.connect()
    async with worker_process(path, "share") as one, worker_process(path, "share") as two:
        await publisher.publish([message(i) for i in range(300)])
        await publisher.close()
        processed = [await read_all(one), await read_all(two)]

    everything = processed[0] + processed[1]
    assert sorted(everything) == sorted(f"msg-{i}" for i in range(300))  # each exactly once
    assert all(processed), [len(p) for p in processed]


async def read_all(process: asyncio.subprocess.Process) -> list[str]:
    ids: list[str] = []
    while line := await read_line(process):
        ids += json.loads(line)
    assert await process.wait() == 0
    return ids


async def test_leases_of_a_killed_process_go_to_another_member(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    broker = EmbeddedBroker(path)
    await broker.connect()
    try:
        spec = ConsumerSpec("workers", (TOPIC,), ack_wait=1.0)
        await broker.declare(spec)
        await broker.publish([message(i) for i in range(20)])
        async with worker_process(path, "hold", ack_wait=1.0, count=20) as doomed:
            held = json.loads(await read_line(doomed))
            os.kill(doomed.pid, signal.SIGKILL)
            assert await doomed.wait() == -signal.SIGKILL

        survivor = await broker.consumer(spec)
        early = await survivor.fetch(100, timeout=0.2)
        again: list[Delivery] = []
        deadline = time.monotonic() + 5.0
        while len(again) < 20 and time.monotonic() < deadline:
            again += await survivor.fetch(100, timeout=0.5)
    finally:
        await broker.close()

    assert sorted(held) == sorted(f"msg-{i}" for i in range(20))
    assert early == []  # the dead process's leases still stood
    assert sorted((d.message_id, d.attempt) for d in again) == sorted((m, 2) for m in held)
