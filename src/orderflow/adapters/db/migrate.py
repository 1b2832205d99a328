"""Apply the Alembic migrations to the order database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from orderflow.adapters.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(db: Database) -> None:
    def upgrade(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), "head")

    async with db.write() as conn:
        if not db.is_sqlite:
            # Serialise concurrent starters (several instances booting at once).
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727072)")
        await conn.run_sync(upgrade)
