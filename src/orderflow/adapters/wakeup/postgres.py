"""Wake-ups through PostgreSQL's LISTEN/NOTIFY, for processes on any machine sharing a database.

One dedicated asyncpg connection per process listens on the channels waited on and sends the
signals (`pg_notify`, delivered to every listener once it commits: at once, as it runs alone).
Signals sent in a burst are coalesced into one round trip per channel. After an outage the
connection is opened again by the next wait, which then reports a wake-up: signals may have been
missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import structlog

from orderflow.adapters.wakeup.signal_event import take

log = structlog.get_logger()

_PREFIX = "orderflow_"
# What an outage or a restart of the server raises (a connect timing out included).
_LOST = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy URL (postgresql+asyncpg://...) as asyncpg wants it."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


class PostgresWakeup:
    def __init__(self, dsn: str) -> None:
        self._dsn = asyncpg_dsn(dsn)
        self._conn: Any = None  # asyncpg.Connection, untyped
        self._lock = asyncio.Lock()
        self._events: dict[str, asyncio.Event] = {}
        self._pending: set[str] = set()
        self._sender: asyncio.Task[None] | None = None
        self._listening: set[str] = set()
        self._connected_before = False

    def signal(self, channel: str) -> None:
        self._pending.add(channel)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send())

    async def wait(self, channel: str, timeout: float) -> bool:
        event = self._events.setdefault(channel, asyncio.Event())
        try:
            if await self._ensure_connected():
                event.set()  # (re)connected: whatever was signalled meanwhile went unheard
        except _LOST as exc:
            # An outage: this wait lasts its timeout, and the next one connects again.
            log.debug("wake-up connection failed", error=repr(exc))
        return await take(event, timeout)

    async def close(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await self._sender
        async with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    await self._conn.close(timeout=2)
                self._conn = None

    async def _send(self) -> None:
        while self._pending:
            channels = sorted(self._pending)
            self._pending.clear()
            try:
                await self._ensure_connected()
                async with self._lock:
                    for channel in channels:
                        await self._conn.execute("SELECT pg_notify($1, '')", _PREFIX + channel)
            except _LOST as exc:
                log.debug("wake-up signal lost", error=repr(exc))
                return  # the waiters' slow polls find the work

    async def _ensure_connected(self) -> bool:
        """Open the connection and listen on every channel; True if it was opened again after
        being lost."""
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                for channel in self._events.keys() - self._listening:
                    await self._conn.add_listener(_PREFIX + channel, self._on_notify)
                    self._listening.add(channel)
                return False
            self._conn = None
            conn = await asyncpg.connect(self._dsn, timeout=5)
            self._listening = set()
            for channel in self._events:
                await conn.add_listener(_PREFIX + channel, self._on_notify)
                self._listening.add(channel)
            self._conn = conn
            again, self._connected_before = self._connected_before, True
            return again

    def _on_notify(self, _conn: object, _pid: int, channel: str, _payload: str) -> None:
        event = self._events.get(channel.removeprefix(_PREFIX))
        if event is not None:
            event.set()
