"""Every wait on the order database is bounded: a write behind another process's SQLite lock or
this process's other writers, a PostgreSQL row lock, a slow statement, and a migration behind
another starter's advisory lock each fail with the database's own error after the configured
timeout instead of waiting for ever. (Each is guarded by a 20 s limit so a missing bound fails
the test rather than hanging it.)"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError

from orderflow.adapters.db.engine import Database, Timeouts
from orderflow.adapters.db.migrate import migrate
from orderflow.adapters.gateway_db import database as gateway_db
from orderflow.adapters.migrations import lock_key
from tests.support.databases import fresh_database

SHORT = Timeouts(lock=0.2, statement=10.0, connect=5.0, migration=0.3)


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


async def raw_postgres(url: str) -> asyncpg.Connection:
    parts = make_url(url)
    return await asyncpg.connect(
        host=parts.host, port=parts.port, user=parts.username, database=parts.database
    )


async def test_a_sqlite_write_behind_another_processs_lock_gives_up(tmp_path: Path) -> None:
    path = tmp_path / "orderflow.db"
    other = sqlite3.connect(path, isolation_level=None)  # another process, as SQLite sees it
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("BEGIN IMMEDIATE")
    db = Database(f"sqlite+aiosqlite:///{path}", timeouts=SHORT)
    try:
        async with asyncio.timeout(20):
            with pytest.raises(OperationalError, match="locked"):
                async with db.write():
                    pass
    finally:
        other.rollback()
        other.close()
        await db.dispose()


async def test_a_sqlite_write_behind_this_processs_writers_gives_up(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'orderflow.db'}", timeouts=SHORT)
    try:
        async with db.write():
            async with asyncio.timeout(20):
                with pytest.raises(TimeoutError, match=r"waited 0\.2 s"):
                    async with db.write():
                        pass
        async with db.write() as conn:  # the lock was given back
            await conn.execute(text("SELECT 1"))
    finally:
        await db.dispose()


async def test_a_postgresql_row_lock_is_waited_for_boundedly(postgres_url: str) -> None:
    holder = await raw_postgres(postgres_url)
    db = Database(postgres_url, timeouts=SHORT)
    try:
        await holder.execute(
            "CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t VALUES (1, 0)"
        )
        async with holder.transaction():
            await holder.execute("SELECT * FROM t WHERE id = 1 FOR UPDATE")
            async with asyncio.timeout(20):
                with pytest.raises(DBAPIError, match="lock timeout"):
                    async with db.write() as conn:
                        await conn.execute(text("UPDATE t SET n = n + 1 WHERE id = 1"))
    finally:
        await holder.close()
        await db.dispose()


async def test_a_slow_postgresql_statement_is_cancelled(postgres_url: str) -> None:
    db = Database(postgres_url, timeouts=Timeouts(statement=0.2))
    try:
        async with asyncio.timeout(20):
            with pytest.raises(DBAPIError, match="statement timeout"):
                async with db.read() as conn:
                    await conn.execute(text("SELECT pg_sleep(30)"))
    finally:
        await db.dispose()


async def test_a_migration_behind_another_starters_advisory_lock_gives_up(
    postgres_url: str,
) -> None:
    holder = await raw_postgres(postgres_url)
    db = Database(postgres_url, timeouts=SHORT)
    try:
        await holder.execute(f"SELECT pg_advisory_lock({lock_key('alembic_version')})")
        async with asyncio.timeout(20):
            # Whichever of the migration's bounds (lock wait, statement) strikes first.
            with pytest.raises(DBAPIError, match=r"(lock|statement) timeout"):
                await migrate(db)
        await holder.execute(f"SELECT pg_advisory_unlock({lock_key('alembic_version')})")
        await migrate(db)  # once the other starter is done, it goes through
    finally:
        await holder.close()
        await db.dispose()


async def test_the_gateways_database_waits_boundedly_too(postgres_url: str) -> None:
    holder = await raw_postgres(postgres_url)
    engine = gateway_db.create_engine(postgres_url, Timeouts(statement=0.2))
    try:
        async with asyncio.timeout(20):
            with pytest.raises(DBAPIError, match="statement timeout"):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT pg_sleep(30)"))
        await holder.execute(f"SELECT pg_advisory_lock({lock_key(gateway_db.VERSION_TABLE)})")
        async with asyncio.timeout(20):
            with pytest.raises(DBAPIError, match=r"(lock|statement) timeout"):
                await gateway_db.migrate(engine, timeout=0.3)
    finally:
        await holder.close()
        await engine.dispose()
