"""Alembic environment: runs on the connection handed over by `orderflow.adapters.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from orderflow.adapters.db.tables import metadata

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `orderflow migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
