"""Alembic environment for the gateway database; `orderflow.adapters.migrations` hands in the
connection."""

from __future__ import annotations

from alembic import context

from orderflow.adapters.gateway_db.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run gateway migrations through orderflow.adapters.gateway_db.database.migrate"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=config.get_main_option("version_table") or "gateway_alembic_version",
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
