"""The Alembic migrations build exactly the schema tables.py declares, on SQLite and PostgreSQL,
and downgrade cleanly back to nothing."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import alembic_config, migrate
from orderflow.adapters.db.tables import metadata


async def test_migrations_match_the_declared_tables_and_downgrade_to_nothing(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        await migrate(db)
        async with db.read() as conn:
            drift = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert drift == []

        def downgrade(sync: Connection) -> list[str]:
            command.downgrade(alembic_config(sync), "base")
            return [t for t in inspect(sync).get_table_names() if t != "alembic_version"]

        async with db.write() as conn:
            assert await conn.run_sync(downgrade) == []
    finally:
        await db.dispose()
