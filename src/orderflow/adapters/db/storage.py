"""SqlStorage: the storage port over one Database, a transaction handing out SQL repositories.

Repositories are built once per transaction, on first use, around its connection. Integrity
errors the database raises leave here as WriteConflictError (the driver's error is the cause), so
no service needs to know SQLAlchemy's exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.adapters.db.attempts import SqlAttemptLog
from orderflow.adapters.db.catalog import SqlCatalog
from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.inventory import SqlInventory
from orderflow.adapters.db.order_queries import SqlOrderQueries
from orderflow.adapters.db.orders import SqlOrderRepository
from orderflow.adapters.db.outbox import SqlOutbox
from orderflow.adapters.db.payments import SqlPaymentLedger
from orderflow.adapters.db.processed import SqlProcessedMessages, SqlProcessedRetention
from orderflow.adapters.db.status_changes import SqlStatusChanges
from orderflow.adapters.db.watch import SqlOrderWatch, SqlPipelineBacklog
from orderflow.ports.errors import WriteConflictError


class SqlReads:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    @cached_property
    def queries(self) -> SqlOrderQueries:
        return SqlOrderQueries(self.conn)

    @cached_property
    def catalog(self) -> SqlCatalog:
        return SqlCatalog(self.conn)

    @cached_property
    def payments(self) -> SqlPaymentLedger:
        return SqlPaymentLedger(self.conn)

    @cached_property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self.conn)

    @cached_property
    def status_changes(self) -> SqlStatusChanges:
        return SqlStatusChanges(self.conn)

    @cached_property
    def attempts(self) -> SqlAttemptLog:
        return SqlAttemptLog(self.conn)

    @cached_property
    def backlog(self) -> SqlPipelineBacklog:
        return SqlPipelineBacklog(self.conn)


class SqlWrites(SqlReads):
    @cached_property
    def orders(self) -> SqlOrderRepository:
        return SqlOrderRepository(self.conn)

    @cached_property
    def inventory(self) -> SqlInventory:
        return SqlInventory(self.conn)

    @cached_property
    def watch(self) -> SqlOrderWatch:
        return SqlOrderWatch(self.conn)

    @cached_property
    def retention(self) -> SqlProcessedRetention:
        return SqlProcessedRetention(self.conn)

    def processed(self, consumer: str) -> SqlProcessedMessages:
        return SqlProcessedMessages(self.conn, consumer)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self.conn.begin_nested():
            yield


class SqlStorage:
    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def claims_rows(self) -> bool:
        return not self.db.is_sqlite

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqlReads]:
        async with self.db.read() as conn:
            yield SqlReads(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqlWrites]:
        try:
            async with self.db.write() as conn:
                yield SqlWrites(conn)
        except IntegrityError as exc:
            raise WriteConflictError(str(exc.orig)) from exc

    async def ping(self) -> None:
        async with self.db.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.db.dispose()
