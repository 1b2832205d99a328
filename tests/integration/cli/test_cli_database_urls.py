"""Database URLs as hosting providers give them: `postgresql://` and `postgres://` work (the async
driver is chosen), and a URL nothing can use is refused in one line that names the setting,
never with a traceback and never showing the password."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import fresh_database, query

SECRET = "s3cret"  # a password that must never show


def orderflow(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orderflow", *args],
        env={**os.environ, "ORDERFLOW_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_plain_postgresql_url_is_used_with_the_async_driver(tmp_path: Path, scheme: str) -> None:
    with (
        fresh_database("postgresql", tmp_path / "orders") as orders_url,
        fresh_database("postgresql", tmp_path / "gateway") as gateway_url,
    ):
        plain = orders_url.replace("postgresql+asyncpg://", f"{scheme}://")
        gateway_plain = gateway_url.replace("postgresql+asyncpg://", f"{scheme}://")
        done = orderflow(
            tmp_path,
            "migrate",
            ORDERFLOW_DATABASE_URL=plain,
            ORDERFLOW_GATEWAY_DATABASE_URL=gateway_plain,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        orders = asyncio.run(query(orders_url, "SELECT count(*) FROM orders"))
        accounts = asyncio.run(query(gateway_url, "SELECT count(*) FROM gateway_accounts"))
    assert orders == [(0,)]
    assert accounts == [(0,)]


def test_a_plain_sqlite_url_is_used_with_the_async_driver(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'orders.db'}"
    done = orderflow(tmp_path, "migrate", ORDERFLOW_DATABASE_URL=url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "orders.db").stat().st_size > 0


UNUSABLE = [
    pytest.param("ORDERFLOW_DATABASE_URL", f"mysql://root:{SECRET}@127.0.0.1/shop", id="mysql"),
    pytest.param("ORDERFLOW_DATABASE_URL", f"{SECRET}-not-a-url", id="no-scheme"),
    pytest.param(
        "ORDERFLOW_GATEWAY_DATABASE_URL", f"oracle://u:{SECRET}@db/gw", id="gateway-oracle"
    ),
]


@pytest.mark.parametrize(("variable", "url"), UNUSABLE)
@pytest.mark.parametrize("command", ["run", "migrate"])
def test_an_unusable_database_url_is_refused_in_one_line(
    tmp_path: Path, command: str, variable: str, url: str
) -> None:
    done = orderflow(tmp_path, command, **{variable: url})
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert SECRET not in output, output[-3000:]
    [line] = done.stderr.strip().splitlines()
    assert variable in line
