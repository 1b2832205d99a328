"""The gateway's own database: tables, engine, migrations and repositories (all its SQL lives here).

A separate database from the order database (`orderflow.adapters.db`): its own metadata, Alembic
scripts and version table, no table shared.
"""
