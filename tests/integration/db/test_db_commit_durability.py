"""Which commits wait for the disk: the API's always, since a 202 promises the order is stored;
the workers' and the broker's only where a commit lost to a power loss could not be redone,
i.e. when the broker keeps its tables in a file of its own. A durable commit syncs the WAL after
giving the write lock back, so no other writer waits for the disk."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from orderflow.adapters.broker.embedded.broker import EmbeddedBroker
from orderflow.adapters.db import engine
from orderflow.adapters.db.engine import Database
from orderflow.bootstrap import build_broker, build_database
from orderflow.config import Settings

FULL, NORMAL = 2, 1  # what PRAGMA synchronous answers


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the process flushes to disk, recorded on their way to the real call."""
    paths: list[str] = []
    real: Callable[[int], None] = os.fdatasync

    def recording(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(engine.os, "fdatasync", recording)
    return paths


async def _write_once(db: Database) -> int:
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            return int((await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one())
    finally:
        await db.dispose()


async def _broker_commit_mode(settings: Settings) -> int:
    broker = build_broker(settings)
    assert isinstance(broker, EmbeddedBroker)
    await broker.connect()
    try:
        return await broker.run(lambda conn: int(conn.execute("PRAGMA synchronous").fetchone()[0]))
    finally:
        await broker.close()


async def test_in_one_file_only_the_commits_answered_to_clients_wait_for_the_disk(
    tmp_path: Path, synced: list[str]
) -> None:
    settings = Settings(data_dir=tmp_path)
    wal = f"{(tmp_path / 'orderflow.db').resolve()}-wal"

    # Never FULL: that would hold the file's one write lock during the fsync.
    assert await _write_once(build_database(settings)) == NORMAL
    assert synced == [wal]
    assert await _write_once(build_database(settings, answers_clients=False)) == NORMAL
    assert synced == [wal]  # no second sync
    assert await _broker_commit_mode(settings) == NORMAL


async def test_with_a_broker_file_of_its_own_every_commit_waits_for_the_disk(
    tmp_path: Path, synced: list[str]
) -> None:
    settings = Settings(data_dir=tmp_path, broker_url=f"embedded://{tmp_path}/broker.db")
    wal = f"{(tmp_path / 'orderflow.db').resolve()}-wal"

    assert not settings.pipeline_in_one_file
    await _write_once(build_database(settings))
    await _write_once(build_database(settings, answers_clients=False))
    assert synced == [wal, wal]
    assert await _broker_commit_mode(settings) == FULL
