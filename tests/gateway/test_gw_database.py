"""The gateway's own database: its tables only, its own version table, migrations idempotent."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from orderflow.bootstrap import create_gateway_admin, migrate_gateway
from orderflow.ports.accounts import EmailTakenError
from orderflow.services.gateway.admin import AdminInputError
from tests.gateway.gateway_harness import gateway_settings, make_settings


async def test_migrations_create_only_gateway_tables(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    gw = gateway_settings()
    await migrate_gateway(settings, gw)
    await migrate_gateway(settings, gw)  # again at every start: nothing to do
    database = tmp_path / "gateway.db"
    with closing(sqlite3.connect(database)) as conn:
        tables = {
            row[0] for row in conn.execute("select name from sqlite_master where type='table'")
        }
        version = conn.execute("select version_num from gateway_alembic_version").fetchall()
    assert tables == {
        "gateway_alembic_version",
        "gateway_accounts",
        "gateway_refresh_tokens",
        "gateway_api_keys",
        "gateway_account_changes",
    }
    assert version == [("gw0002",)]
    assert not (tmp_path / "orderflow.db").exists()


async def test_create_admin(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    gw = gateway_settings()
    account_id = await create_gateway_admin(settings, "Boss@Example.com", "a long password", gw)
    with closing(sqlite3.connect(tmp_path / "gateway.db")) as conn:
        row = conn.execute(
            "select email, roles, password_hash from gateway_accounts where id = ?", (account_id,)
        ).fetchone()
    assert row[0] == "boss@example.com"
    assert row[1] == '["admin"]'
    assert row[2].startswith("$argon2id$")
    with pytest.raises(EmailTakenError):
        await create_gateway_admin(settings, "boss@example.com", "another password", gw)
    with pytest.raises(AdminInputError):
        await create_gateway_admin(settings, "not-an-email", "a long password", gw)
    with pytest.raises(AdminInputError):
        await create_gateway_admin(settings, "x@example.com", "short", gw)
