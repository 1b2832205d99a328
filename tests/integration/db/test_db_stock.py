"""The order database on SQLite and on PostgreSQL, through the application's own repositories:
concurrent OS processes reserving scarce stock, concurrent migrations, relays sharing the outbox.

Written once and run per engine, like the broker contract suite.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from alembic.script import ScriptDirectory

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import alembic_config, migrate
from orderflow.adapters.db.outbox import SqlOutbox
from orderflow.demo.catalog import SCARCE, seed_demo_catalog
from orderflow.ports.broker import OutgoingMessage
from tests.support.databases import fresh_database, query, stock_levels

RACERS = 8
BATCHES = 3  # of 4 one-unit orders: 96 orders, and the first round alone asks for 32 units
SCARCE_UNITS = sum(SCARCE["LIMITED-TEE"].values())


async def _prepared(url: str) -> None:
    db = Database(url)
    try:
        await migrate(db)
        assert await seed_demo_catalog(db)
    finally:
        await db.dispose()


async def test_8_processes_racing_for_the_last_units_never_oversell(database_url: str) -> None:
    await _prepared(database_url)
    start_at = time.time() + 3.0  # every racer connected and waiting by then
    racers = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.integration.db.stock_racer"),
            *(database_url, str(BATCHES), str(start_at)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(RACERS)
    ]
    outputs = [await asyncio.wait_for(r.communicate(), 120) for r in racers]
    results = []
    for racer, (out, err) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, err.decode()
        results.append(orjson.loads(out.splitlines()[-1]))  # after any log lines

    assert [r["errors"] for r in results] == [[]] * RACERS, "every racer got a clean answer"
    reserved = [oid for r in results for oid in r["reserved"]]
    rejected = [oid for r in results for oid in r["rejected"]]
    assert len(reserved) + len(rejected) == RACERS * BATCHES * 4
    # 96 one-unit orders for 25 units: exactly 25 win, the rest are refused, nothing oversold.
    assert len(reserved) == SCARCE_UNITS
    assert sum(1 for r in results if r["reserved"]) > 1, "the race was a race"
    levels = await stock_levels(database_url)
    assert levels["LIMITED-TEE"] == (SCARCE_UNITS, SCARCE_UNITS)
    held = await query(
        database_url,
        "SELECT order_id, SUM(quantity) FROM reservations"
        " WHERE sku = 'LIMITED-TEE' AND status = 'held' GROUP BY order_id",
    )
    assert sorted(str(oid) for oid, _ in held) == sorted(reserved)
    assert {int(qty) for _, qty in held} == {1}  # type: ignore[call-overload]
    per_warehouse = dict(
        await query(database_url, "SELECT warehouse, reserved FROM stock WHERE sku = 'LIMITED-TEE'")
    )
    assert per_warehouse == SCARCE["LIMITED-TEE"], "both warehouses emptied, neither below zero"
    # The plain sku of the same orders was reserved once per winning order, and only for those.
    assert levels["MUG-WHT"][1] == SCARCE_UNITS


async def test_concurrent_migrations_end_at_one_schema(database_url: str) -> None:
    dbs = [Database(database_url, pool_size=1) for _ in range(4)]
    try:
        await asyncio.gather(*(migrate(db) for db in dbs))
        await migrate(dbs[0])  # and again: a no-op
    finally:
        for db in dbs:
            await db.dispose()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await query(database_url, "SELECT version_num FROM alembic_version") == [(head,)]


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


async def test_two_claims_never_take_the_same_outbox_rows(postgres_url: str) -> None:
    """What lets several relays run against PostgreSQL: a claimed batch is skipped by others.
    (SQLite has one writer at a time and one relay per file, so the question does not arise.)"""
    await _prepared(postgres_url)
    db = Database(postgres_url)
    try:
        async with db.write() as conn:
            await SqlOutbox(conn).add(
                [OutgoingMessage("t", f"k{i}", f"m{i}", b"{}") for i in range(10)]
            )
        first_claimed = asyncio.Event()
        release = asyncio.Event()

        async def first() -> list[str]:
            async with db.write() as conn:
                rows = await SqlOutbox(conn).oldest(6, claim=True)
                first_claimed.set()
                await release.wait()
                await SqlOutbox(conn).remove([r.id for r in rows])
            return [r.message.message_id for r in rows]

        async def second() -> list[str]:
            await first_claimed.wait()
            async with db.write() as conn:
                rows = await SqlOutbox(conn).oldest(6, claim=True)
            release.set()
            return [r.message.message_id for r in rows]

        taken_first, taken_second = await asyncio.wait_for(asyncio.gather(first(), second()), 10)
    finally:
        await db.dispose()
    assert taken_first == [f"m{i}" for i in range(6)]
    assert taken_second == [f"m{i}" for i in range(6, 10)]
