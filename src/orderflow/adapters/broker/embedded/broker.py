"""The embedded broker: durable topics and consumer groups in one SQLite file.

The default engine: no server to run, yet it keeps the whole Broker contract, also between OS
processes on one machine that open the same file (each process has its own connection; SQLite's
write lock and `busy_timeout` serialise them; a commit wakes the other processes' waiting
fetches through a Unix socket beside the file). All SQLite work happens on one dedicated thread
per broker, so the event loop never blocks on disk; each publish, fetch and settle is one
transaction, so batches pay for one commit (one fsync with synchronous=FULL).

URL: `embedded:///absolute/path/broker.db`, optionally `?synchronous=normal` (faster commits;
survives kill -9 of any process, but the last commits may be lost on power loss).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

from orderflow.adapters.broker.embedded import store
from orderflow.adapters.broker.embedded.consumer import EmbeddedConsumer
from orderflow.adapters.broker.embedded.schema import Synchronous, open_database
from orderflow.adapters.urls import redact_url
from orderflow.adapters.wakeup.unix_sockets import UnixSocketWakeup
from orderflow.ports.broker import ConsumerSpec, DeadLetterRecord, OutgoingMessage

P = ParamSpec("P")
T = TypeVar("T")

DEDUP_WINDOW = 600.0  # seconds a message id is remembered
_PRUNE_EVERY = 60.0
# Other processes sharing the file signal this channel after each commit that may give a fetch
# work (a publish, a settle); the fetches' own polls are the safety net for a lost signal.
_CHANNEL = "broker"
_SAFETY_POLL = 1.0


class EmbeddedBroker:
    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Synchronous = "FULL",
        dedup_window: float = DEDUP_WINDOW,
    ) -> None:
        self.path = Path(path)
        self._synchronous: Synchronous = synchronous
        self._dedup_window = dedup_window
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._consumers: set[EmbeddedConsumer] = set()
        self._last_prune = 0.0
        self._activity: dict[str, asyncio.Event] = {}  # per group: set when it may have work
        self._watcher: asyncio.Task[None] | None = None
        self._others = _wakeup_of(self.path)

    @classmethod
    def from_url(cls, url: str) -> EmbeddedBroker:
        parts = urlsplit(url)
        if parts.scheme != "embedded" or parts.netloc or not parts.path.startswith("/"):
            raise ValueError(
                f"expected embedded:///absolute/path/broker.db, got {redact_url(url)!r}"
            )
        sync = parse_qs(parts.query).get("synchronous", ["full"])[-1].upper()
        if sync not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be full or normal, got {sync.lower()!r}")
        # Settings builds f"embedded:///{absolute}", i.e. four slashes; both spellings work.
        return cls("/" + parts.path.lstrip("/"), synchronous="FULL" if sync == "FULL" else "NORMAL")

    async def connect(self) -> None:
        if self._executor is not None:
            return
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "embedded-broker")
        loop = asyncio.get_running_loop()
        opener = functools.partial(open_database, self.path, self._synchronous)
        self._conn = await loop.run_in_executor(self._executor, opener)
        self._watcher = asyncio.create_task(self._watch_other_processes())

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for consumer in list(self._consumers):
            await consumer.close()
        await self._others.close()
        conn, executor = self._conn, self._executor
        self._conn, self._executor = None, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        executor.shutdown(wait=True)  # idle by now: the close above was its last job

    async def declare(self, spec: ConsumerSpec) -> None:
        await self.run(store.declare, spec.group, spec.topics, spec.expires_after, time.time())

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        now = time.time()
        prune = now - self._last_prune > _PRUNE_EVERY
        created = await self.run(store.publish, messages, now, self._dedup_window, prune)
        if prune:
            self._last_prune = now
        if created:
            self.notify()
            self.notify_others()

    async def consumer(self, spec: ConsumerSpec) -> EmbeddedConsumer:
        await self.declare(spec)
        consumer = EmbeddedConsumer(self, spec)
        self._consumers.add(consumer)
        return consumer

    async def dead_letters(
        self, group: str, limit: int = 100, after: int = 0
    ) -> list[DeadLetterRecord]:
        return await self.run(store.dead_letters, group, limit, after)

    async def dead_letter(self, group: str, position: int) -> DeadLetterRecord | None:
        return await self.run(store.dead_letter, group, position)

    async def replay_dead_letter(self, group: str, position: int) -> bool:
        replayed = await self.run(store.replay_dead_letter, group, position, time.time())
        if replayed:
            # The group's members may be in this process or another (an admin's command).
            self.notify(group)
            self.notify_others()
        return replayed

    async def discard_dead_letter(self, group: str, position: int) -> bool:
        return await self.run(store.discard_dead_letter, group, position)

    async def ping(self) -> None:
        await self.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def backlog(self, spec: ConsumerSpec) -> int:
        return await self.run(store.backlog, spec.group)

    # Engine-internal API used by EmbeddedConsumer.

    async def run(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(connection, ...)` on the broker thread."""
        executor, conn = self._open()
        call = functools.partial(fn, conn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    def submit(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        """Run `fn(connection, ...)` on the broker thread without waiting (best effort)."""
        if self._executor is not None and self._conn is not None:
            self._executor.submit(fn, self._conn, *args, **kwargs)

    def activity(self, group: str) -> asyncio.Event:
        """Set when `group` may have new work (take it before querying, so that work committed
        during the query still wakes the fetch)."""
        event = self._activity.get(group)
        if event is None:
            event = self._activity[group] = asyncio.Event()
        return event

    def notify(self, group: str | None = None) -> None:
        """Wake the fetches of this process waiting for new work: of one group (an ack frees
        only its own group's next message of a key), or all."""
        for name in [group] if group is not None else list(self._activity):
            event = self._activity.pop(name, None)
            if event is not None:
                event.set()

    def notify_others(self) -> None:
        """Wake the fetches of other processes sharing the file (after a commit)."""
        self._others.signal(_CHANNEL)

    def published_at_commit(self) -> None:
        """A writer of this process committed outbox rows that the outbox trigger published
        (database and broker in one file): wake every fetch, here and in other processes."""
        self.notify()
        self.notify_others()

    def forget(self, consumer: EmbeddedConsumer) -> None:
        self._consumers.discard(consumer)

    async def _watch_other_processes(self) -> None:
        while True:
            if await self._others.wait(_CHANNEL, _SAFETY_POLL) and self._executor is not None:
                self.notify()

    def _open(self) -> tuple[concurrent.futures.ThreadPoolExecutor, sqlite3.Connection]:
        if self._executor is None or self._conn is None:
            raise RuntimeError("EmbeddedBroker is not connected (call connect() first)")
        return self._executor, self._conn


def _wakeup_of(path: Path) -> UnixSocketWakeup:
    return UnixSocketWakeup(path.parent / f"{path.name}.wakeup")


def fetch_waker(url: str) -> Callable[[], None]:
    """For a process without a broker of its own (the API) that commits outbox rows into the
    broker's file (the outbox trigger publishes them): wakes every fetch of the processes
    sharing the file, as their own publishes do."""
    return functools.partial(_wakeup_of(EmbeddedBroker.from_url(url).path).signal, _CHANNEL)
