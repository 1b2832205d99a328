"""Database engines for SQLite (embedded) and PostgreSQL (distributed).

`Database.write()` opens a transaction meant to write. On SQLite it starts with BEGIN IMMEDIATE:
several processes share the file, and a deferred transaction that reads and then writes would fail
with SQLITE_BUSY instead of waiting for the lock. Reads use a separate engine with ordinary
(deferred) transactions so they never queue behind writers (WAL lets them read concurrently).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_PRAGMAS = (
    # A commit is written to the WAL, not synced: durable writers sync it themselves, after
    # giving the write lock back (see Database).
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
# Writers only: waiting for another process's write lock is done in Database.write, in short steps.
WRITER_BUSY_TIMEOUT = "PRAGMA busy_timeout=2"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Every wait on the database is bounded (seconds). Past one, the operation fails with the
    driver's error (SQLite "database is locked", PostgreSQL LockNotAvailable or QueryCanceled),
    which the caller treats as any database error: a consumer retries its batch later."""

    lock: float = 30.0  # a write waiting for SQLite's write lock or PostgreSQL row locks
    statement: float = 60.0  # one PostgreSQL statement (statement_timeout)
    connect: float = 10.0  # opening a connection
    # A migration on PostgreSQL: waiting for another starter's advisory lock, and each statement
    # (a schema change may legitimately take longer than a request's statement).
    migration: float = 300.0


class Database:
    """`durable_commits` (SQLite): a commit is on disk before `write()` returns, as a commit
    answered to a client with a 202 must be. The WAL is synced after the commit has given the
    write lock back rather than during it (synchronous=FULL would hold the one write lock of
    the file for the fsync, ~5 ms here and far more when the disk is busy, and every other
    writer, in every process, would wait for it). Without it a commit survives any process crash
    but not a power loss; in WAL mode the file then comes back as it was after some earlier
    commit, never half of one, and a durable commit makes every commit before it durable too
    (the WAL is synced as a whole)."""

    def __init__(
        self,
        url: str,
        pool_size: int = 10,
        *,
        durable_commits: bool = True,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.url: URL = make_url(url)
        self.timeouts = timeouts or Timeouts()
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._wal: str | None = None
        if self.is_sqlite:
            self._prepare_sqlite_file()
            if durable_commits and self.url.database not in (None, "", ":memory:"):
                self._wal = f"{self.url.database}-wal"
        self.writer = self._create_engine(pool_size, immediate=True)
        self._write_lock = asyncio.Lock()
        self.reader = (
            self._create_engine(pool_size, immediate=False) if self.is_sqlite else self.writer
        )

    def _prepare_sqlite_file(self) -> None:
        if self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)

    def _create_engine(self, pool_size: int, *, immediate: bool) -> AsyncEngine:
        kwargs: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size}
        if not self.is_sqlite:
            kwargs["pool_pre_ping"] = True
            kwargs["connect_args"] = postgres_connect_args(self.timeouts)
        engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(engine, immediate=immediate, lock_timeout=self.timeouts.lock)
        return engine

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if not self.is_sqlite:
            async with self.writer.begin() as conn:
                yield conn
            return
        # SQLite has one writer at a time. Writers of this process queue here, in order, instead
        # of in SQLite's busy handler, which sleeps up to 100 ms between tries and so lets a
        # free lock sit idle; writers of other processes are waited for in short steps below.
        # Each of the two waits is bounded by the lock timeout.
        try:
            async with asyncio.timeout(self.timeouts.lock):
                await self._write_lock.acquire()
        except TimeoutError:
            raise TimeoutError(
                f"waited {self.timeouts.lock:g} s for this process's other writers"
            ) from None
        try:
            deadline = asyncio.get_running_loop().time() + self.timeouts.lock
            async with self._write_in_turn(deadline) as conn:
                yield conn
        finally:
            self._write_lock.release()
        if self._wal is not None:
            await asyncio.to_thread(_sync_file, self._wal)

    @asynccontextmanager
    async def _write_in_turn(self, deadline: float) -> AsyncIterator[AsyncConnection]:
        """This process's turn to write on SQLite: another process's lock waited for until
        `deadline` (the loop's time)."""
        async with self.writer.connect() as conn:
            loop = asyncio.get_running_loop()
            delay = 0.0005
            while True:
                try:
                    await conn.begin()
                    break
                except OperationalError as exc:
                    if "locked" not in str(exc) or loop.time() > deadline:
                        raise
                    await conn.rollback()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.005)
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            else:
                await conn.commit()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()

    async def ping(self) -> None:
        """Raise unless the database answers (a readiness check)."""
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))


def postgres_connect_args(t: Timeouts) -> dict[str, Any]:
    """asyncpg's: the connect timeout, and lock and statement timeouts for every session."""
    return {
        "timeout": t.connect,
        "server_settings": {"lock_timeout": _ms(t.lock), "statement_timeout": _ms(t.statement)},
    }


def _ms(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool, lock_timeout: float) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours to emit.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={_ms(lock_timeout)}")
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        enable_wal(cursor, lock_timeout)
        if immediate:
            cursor.execute(WRITER_BUSY_TIMEOUT)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sync_file(path: str) -> None:
    """Flush `path` to the disk (whichever connection wrote it: a sync covers the file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # no WAL left: the last connection checkpointed it into the synced database
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def enable_wal(cursor: Any, patience: float = 30.0) -> None:
    """Switch the file to WAL (a no-op once it is). The first switch of a new file needs its
    write lock, and when several connections try at once SQLite answers the losers BUSY at once,
    past the busy handler (waiting could deadlock), so they try again here. Only processes that
    open a brand-new file together ever loop; the sleeps are short and bounded."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, whatever adapter wraps it
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
