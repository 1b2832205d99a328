"""A clean world for the audit's tests: orders that went through the real pipeline, then copies.

`build_world` runs the real workers in-process (embedded broker) on a fresh SQLite file or
PostgreSQL database, until it holds a confirmed order, a declined one, a cancelled one that was
refunded and, placed once the workers stopped, a pending one; with the simulated provider's own
ledger beside it. Each test then corrupts its own copy (`World.copy`: a file copy, or a
PostgreSQL database made from the clean one as its template) and runs the real command.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import make_url, text
from typer.testing import CliRunner, Result

from orderflow import cli
from orderflow.adapters.db.engine import Database
from orderflow.bootstrap import WORKERS, WorkerSet, audit, build_database, build_storage, prepare
from orderflow.config import Settings
from orderflow.domain.order import OrderStatus
from orderflow.domain.pricing import price_order
from orderflow.ports.orders import NewOrder
from orderflow.ports.storage import Storage
from orderflow.services.orders.cancel import cancel_order
from orderflow.services.orders.intake import OrderIntake
from tests.support.databases import _admin, query

PROVIDER_FILE = "payment-simulator.db"


@dataclass(frozen=True)
class World:
    data_dir: Path
    database_url: str
    confirmed: str
    declined: str
    refunded: str
    pending: str

    @property
    def provider(self) -> Path:
        return self.data_dir / PROVIDER_FILE

    def audit(self, **settings: str) -> Result:
        """`orderflow audit`, the real command (in this process: a process per run costs seconds
        of imports on a busy machine; tests/e2e runs it as its own process). `settings`: more
        ORDERFLOW_<NAME> variables."""
        env = {
            "ORDERFLOW_DATA_DIR": str(self.data_dir),
            "ORDERFLOW_DATABASE_URL": self.database_url,
        }
        env |= {f"ORDERFLOW_{name.upper()}": value for name, value in settings.items()}
        return CliRunner().invoke(cli.app, ["audit"], env=env)

    def execute(self, sql: str, **params: object) -> None:
        """One statement on this world's order database."""

        async def run() -> None:
            db = Database(self.database_url, pool_size=1)
            try:
                async with db.write() as conn:
                    await conn.execute(text(sql), params)
            finally:
                await db.dispose()

        asyncio.run(run())

    def first_warehouse(self) -> str:
        rows = asyncio.run(query(self.database_url, "SELECT MIN(warehouse) FROM stock"))
        return str(rows[0][0])

    def provider_execute(self, sql: str, *params: object) -> None:
        """One statement on the payment provider's own ledger."""
        with sqlite3.connect(self.provider) as conn:
            conn.execute(sql, params)

    @contextmanager
    def copy(self, where: Path) -> Iterator[World]:
        where.mkdir(parents=True)
        _copy_sqlite(self.provider, where / PROVIDER_FILE)
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite":
            assert url.database
            _copy_sqlite(Path(url.database), where / "orderflow.db")
            yield replace(
                self, data_dir=where, database_url=f"sqlite+aiosqlite:///{where}/orderflow.db"
            )
            return
        name = f"orderflow_{uuid.uuid4().hex[:16]}"
        host, port = url.host or "127.0.0.1", url.port or 5432
        asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"', host, port))
        try:
            copied = url.set(database=name).render_as_string(hide_password=False)
            yield replace(self, data_dir=where, database_url=copied)
        finally:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', host, port))


def _copy_sqlite(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


async def _place(intake: OrderIntake, storage: Storage, token: str) -> str:
    async with storage.read() as reads:
        catalog = await reads.catalog.entries()
    order = NewOrder(
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        price_order([("MUG-WHT", 1)], catalog),
        token,
        {},
        None,
        None,
    )
    await intake.submit(order, None)
    return order.id


async def _settled(storage: Storage, settings: Settings, expected: dict[str, str]) -> bool:
    """Every order in its expected status, the refund recorded, nothing left to publish, and the
    audit (no deadlines: nothing is late yet) content."""
    async with storage.read() as reads:
        for order_id, status in expected.items():
            row = await reads.queries.get(order_id, None)
            if row is None or row["status"] != status:
                return False
        if await reads.outbox.oldest(1):
            return False
    violations, _ = await audit(settings)
    return not violations


async def _until_settled(storage: Storage, settings: Settings, expected: dict[str, str]) -> None:
    """The pipeline offers no event for "all done", so the database is polled (bounded by the
    caller's timeout)."""
    while True:
        if await _settled(storage, settings, expected):
            return
        await asyncio.sleep(0.05)


async def build_world(data_dir: Path, database_url: str) -> World:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    await prepare(settings)
    storage = build_storage(build_database(settings))
    workers = WorkerSet(settings, WORKERS, with_relay=True)
    running = asyncio.create_task(workers.run())
    intake = OrderIntake(storage)
    intake.start()
    try:
        confirmed = await _place(intake, storage, "tok_visa")
        declined = await _place(intake, storage, "tok_decline")
        refunded = await _place(intake, storage, "tok_visa")
        expected = {
            confirmed: OrderStatus.CONFIRMED,
            declined: OrderStatus.PAYMENT_FAILED,
            refunded: OrderStatus.CONFIRMED,
        }
        async with asyncio.timeout(60):
            await _until_settled(storage, settings, expected)
            await cancel_order(storage, refunded, owner=None, actor="admin", reason="test")
            expected[refunded] = OrderStatus.CANCELLED
            # Until the refund is recorded in both ledgers the audit sees a cancelled order
            # that kept its capture.
            await _until_settled(storage, settings, expected)
        workers.stop.set()
        await running
        pending = await _place(intake, storage, "tok_visa")
    finally:
        workers.stop.set()
        await intake.stop()
        await storage.dispose()
        if not running.done():
            running.cancel()
    return World(data_dir, database_url, confirmed, declined, refunded, pending)
