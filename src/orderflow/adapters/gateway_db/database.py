"""The gateway's engine, its readiness check and its migrations (own scripts and version table,
run by `adapters/migrations.py` like the order database's)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from orderflow.adapters.db.engine import Timeouts, enable_wal, postgres_connect_args
from orderflow.adapters.migrations import run_migrations

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "gateway_alembic_version"


def create_engine(url: str, timeouts: Timeouts | None = None) -> AsyncEngine:
    """Every wait bounded by `timeouts`, as the order database's (adapters/db/engine.py)."""
    t = timeouts or Timeouts()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _private_file(Path(path))
        engine = create_async_engine(url, connect_args={"timeout": t.lock})
        event.listen(engine.sync_engine, "connect", functools.partial(_sqlite_pragmas, t.lock))
        return engine
    return create_async_engine(url, pool_pre_ping=True, connect_args=postgres_connect_args(t))


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (it holds password hashes and
    refresh tokens) before SQLite opens it; SQLite gives its WAL and index the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    path.chmod(0o600)  # also a file an older version created readable by everyone


def _sqlite_pragmas(lock_timeout: float, dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    # With retries: processes that open a new file together race for it.
    enable_wal(cursor, lock_timeout)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={max(1, round(lock_timeout * 1000))}")
    cursor.close()


async def migrate(engine: AsyncEngine, revision: str = "head", timeout: float = 300.0) -> None:
    """Upgrade the gateway database to `revision` (idempotent; called at every start); on
    PostgreSQL waiting for another starter and each step bounded by `timeout` seconds."""
    await run_migrations(engine, MIGRATIONS, VERSION_TABLE, revision, timeout=timeout)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers (the gateway's readiness)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
