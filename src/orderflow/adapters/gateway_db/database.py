"""The gateway's engine, its readiness check and its migrations (own scripts and version table,
run by `adapters/migrations.py` like the order database's)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from orderflow.adapters.db.engine import enable_wal
from orderflow.adapters.migrations import run_migrations

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "gateway_alembic_version"


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _private_file(Path(path))
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (it holds password hashes and
    refresh tokens) before SQLite opens it; SQLite gives its WAL and index the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    path.chmod(0o600)  # also a file an older version created readable by everyone


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    enable_wal(cursor)  # with retries: processes that open a new file together race for it
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the gateway database to `revision` (idempotent; called at every start)."""
    await run_migrations(engine, MIGRATIONS, VERSION_TABLE, revision)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers (the gateway's readiness)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
