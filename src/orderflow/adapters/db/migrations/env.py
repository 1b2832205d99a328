"""Alembic environment: runs on the connection handed over by `orderflow.adapters.migrations`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from orderflow.adapters.db.tables import metadata

config = context.config
connection: Connection | None = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `orderflow migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=config.get_main_option("version_table") or "alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
