"""The one way any database of OrderFlow is migrated: Alembic, serialised between starters.

`run_migrations` upgrades one database (the order database, the gateway's) to the head of its
script directory, recording the revision in its own version table. Several instances may start at
once: on PostgreSQL each takes a transaction-level advisory lock first, one key per version table
(so the order and gateway migrations never wait for each other, even in one database), and the
others find the work done when they get it; on SQLite the write transaction itself serialises them.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# The order database's key is the number releases before this module took, so an old and a new
# instance starting together still exclude each other.
_KNOWN_KEYS = {"alembic_version": 727072}


def lock_key(version_table: str) -> int:
    """The PostgreSQL advisory lock key of one version table (a signed 64-bit integer)."""
    if version_table in _KNOWN_KEYS:
        return _KNOWN_KEYS[version_table]
    digest = hashlib.sha256(f"orderflow.migrations:{version_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def alembic_config(
    script_location: Path, version_table: str, connection: Connection | None = None
) -> Config:
    """The Alembic configuration; the env.py scripts run on `connection` (handed in, never
    opened by Alembic) and record revisions in `version_table`."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("version_table", version_table)
    config.attributes["connection"] = connection
    return config


async def run_migrations(
    database: AsyncEngine | AbstractAsyncContextManager[AsyncConnection],
    script_location: Path,
    version_table: str,
    revision: str = "head",
    timeout: float | None = None,
) -> None:
    """Upgrade to `revision` in one write transaction: on an engine's connection, or in the
    transaction a context manager opens (the order database's `Database.write()`). On PostgreSQL
    `timeout` (seconds) bounds the wait for another starter's advisory lock and each statement."""

    def upgrade(conn: Connection) -> None:
        command.upgrade(alembic_config(script_location, version_table, conn), revision)

    transaction = _write_transaction(database) if isinstance(database, AsyncEngine) else database
    async with transaction as conn:
        if conn.dialect.name == "postgresql":
            if timeout is not None:
                ms = max(1, round(timeout * 1000))
                await conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
                await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({lock_key(version_table)})")
        await conn.run_sync(upgrade)


@asynccontextmanager
async def _write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # Take the write lock up front: a deferred transaction that reads the version table
            # and then writes fails at once (SQLITE_BUSY) when another starter got there first.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.begin()
        try:
            yield conn
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()
