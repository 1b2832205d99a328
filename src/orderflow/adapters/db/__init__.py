"""Database adapter: tables, engine, migrations and repositories (all SQL lives here)."""
