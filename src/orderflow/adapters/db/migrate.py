"""Apply the Alembic migrations to the order database (through `adapters/migrations.py`)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import Connection

from orderflow.adapters import migrations
from orderflow.adapters.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    return migrations.alembic_config(MIGRATIONS, VERSION_TABLE, connection)


async def migrate(db: Database) -> None:
    # In Database.write(): on SQLite it queues behind this process's other writers and waits out
    # other processes' write locks.
    timeout = None if db.is_sqlite else db.timeouts.migration
    await migrations.run_migrations(db.write(), MIGRATIONS, VERSION_TABLE, timeout=timeout)
