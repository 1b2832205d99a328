"""Order databases for tests: a fresh SQLite file or a fresh PostgreSQL database per test.

`fresh_database("postgresql")` creates `orderflow_<random>` on the machine's server (through the
`postgres` maintenance database) and drops it afterwards, so tests and test runs never share
state; `require_service("postgres")` decides whether that server is there (see services.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url, text

from orderflow.adapters.db.engine import Database
from tests.support.services import require_service

ENGINES = ("sqlite", "postgresql")
PG_USER = "postgres"


async def _admin(statement: str, host: str, port: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=host, port=port, user=PG_USER, database="postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def fresh_database(engine: str, tmp_path: Path) -> Iterator[str]:
    """Yield the SQLAlchemy URL of an empty database of that engine; drop it afterwards."""
    if engine == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'orderflow.db'}"
        return
    service = require_service("postgres")
    name = f"orderflow_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"', service.host, service.port))
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{service.host}:{service.port}/{name}"
    finally:
        asyncio.run(
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', service.host, service.port)
        )


async def drop_database(url: str) -> None:
    """Drop a PostgreSQL database of `fresh_database` now, cutting its connections: an outage."""
    parts = make_url(url)
    statement = f'DROP DATABASE IF EXISTS "{parts.database}" WITH (FORCE)'
    await _admin(statement, parts.host or "127.0.0.1", parts.port or 5432)


async def database_outage(url: str, seconds: float) -> None:
    """Make one PostgreSQL database unreachable for a while: new connections are refused and open
    ones cut, as in a failover; the server's other databases are untouched."""
    parts = make_url(url)
    host, port = parts.host or "127.0.0.1", parts.port or 5432
    await _admin(f'ALTER DATABASE "{parts.database}" ALLOW_CONNECTIONS false', host, port)
    try:
        cut = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'"
        await _admin(cut.format(parts.database), host, port)
        await asyncio.sleep(seconds)
    finally:
        await _admin(f'ALTER DATABASE "{parts.database}" ALLOW_CONNECTIONS true', host, port)


async def query(url: str, sql: str) -> list[tuple[object, ...]]:
    """Rows of one read-only statement, through the application's own Database."""
    db = Database(url, pool_size=1)
    try:
        async with db.read() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await db.dispose()


async def stock_levels(url: str) -> dict[str, tuple[int, int]]:
    """(on_hand, reserved) per sku, summed over warehouses."""
    rows = await query(url, "SELECT sku, SUM(on_hand), SUM(reserved) FROM stock GROUP BY sku")
    return {str(sku): (int(on_hand), int(reserved)) for sku, on_hand, reserved in rows}  # type: ignore[call-overload]
