"""Which commits wait for the disk (synchronous=FULL): the API's always, since a 202 promises the
order is stored; the workers' and the broker's only where a commit lost to a power loss could not
be redone, i.e. when the broker keeps its tables in a file of its own."""

from __future__ import annotations

from pathlib import Path

from orderflow.adapters.broker.embedded.broker import EmbeddedBroker
from orderflow.adapters.db.engine import Database
from orderflow.bootstrap import build_broker, build_database
from orderflow.config import Settings

FULL, NORMAL = 2, 1  # what PRAGMA synchronous answers


async def _commit_mode(db: Database) -> int:
    try:
        async with db.write() as conn:
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
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)

    assert await _commit_mode(build_database(settings)) == FULL
    assert await _commit_mode(build_database(settings, answers_clients=False)) == NORMAL
    assert await _broker_commit_mode(settings) == NORMAL


async def test_with_a_broker_file_of_its_own_every_commit_waits_for_the_disk(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, broker_url=f"embedded://{tmp_path}/broker.db")

    assert not settings.pipeline_in_one_file
    assert await _commit_mode(build_database(settings)) == FULL
    assert await _commit_mode(build_database(settings, answers_clients=False)) == FULL
    assert await _broker_commit_mode(settings) == FULL
