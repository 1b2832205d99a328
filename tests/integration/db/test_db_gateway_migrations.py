"""The gateway's database is migrated by the same runner as the order database: concurrent
starters end at one schema (on PostgreSQL they queue on their own advisory lock), and the
migrations build exactly what its tables.py declares. Run per engine, like the order database's."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from orderflow.adapters import migrations
from orderflow.adapters.db.migrate import VERSION_TABLE as ORDER_VERSION_TABLE
from orderflow.adapters.gateway_db import database
from orderflow.adapters.gateway_db.tables import metadata
from tests.support.databases import query


def _head() -> str | None:
    config = migrations.alembic_config(database.MIGRATIONS, database.VERSION_TABLE)
    return ScriptDirectory.from_config(config).get_current_head()


async def test_concurrent_gateway_migrations_end_at_one_schema(database_url: str) -> None:
    engines = [database.create_engine(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(database.migrate(engine) for engine in engines))
        await database.migrate(engines[0])  # and again: a no-op
    finally:
        for engine in engines:
            await engine.dispose()
    versions = await query(database_url, f"SELECT version_num FROM {database.VERSION_TABLE}")
    assert versions == [(_head(),)]


async def test_gateway_migrations_match_the_tables_and_downgrade_to_nothing(
    database_url: str,
) -> None:
    engine = database.create_engine(database_url)
    try:
        await database.migrate(engine)
        async with engine.connect() as conn:
            drift = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(
                        sync, opts={"version_table": database.VERSION_TABLE}
                    ),
                    metadata,
                )
            )
        assert drift == []

        def downgrade(sync: Connection) -> list[str]:
            config = migrations.alembic_config(database.MIGRATIONS, database.VERSION_TABLE, sync)
            command.downgrade(config, "base")
            return [t for t in inspect(sync).get_table_names() if t != database.VERSION_TABLE]

        async with engine.begin() as conn:
            assert await conn.run_sync(downgrade) == []
    finally:
        await engine.dispose()


def test_each_version_table_has_its_own_lock() -> None:
    order, gateway = (
        migrations.lock_key(table) for table in (ORDER_VERSION_TABLE, database.VERSION_TABLE)
    )
    assert order == 727072  # what earlier releases took: old and new starters still queue
    assert gateway != order
    assert -(2**63) <= gateway < 2**63
