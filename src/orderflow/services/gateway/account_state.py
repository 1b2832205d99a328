"""Whether an account may still act: a disabled or deleted account is refused on its next
request, with a valid access token or through an API key it created.

Access tokens are checked offline (15 minutes of validity), so the gateway looks the account up
too, through a per-process cache that follows the database's account change counter
(`Accounts.changes`, moved by every disable, enable and delete, from any gateway process or the
CLI). The counter is read at most once per `max_age` (0.5 s) per process, whatever the traffic
and however many accounts are active; when it moved, every cached state is dropped and read again
on its account's next request. So a change reaches every process within `max_age`, and the
database sees one tiny query per process per `max_age` plus one primary-key read per account
after each change, instead of a read per request. An entry also expires after `refresh_after`
(30 s), which covers a change made behind the counter's back (a hand-edited row). A change made
through this process is seen at once (`forget`). Concurrent requests share one read.

When the database cannot be read, the last answer known stands (logged); an account with none
is refused with AccountStateUnavailableError (a 503), never let through unchecked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import structlog

from orderflow.ports.accounts import Accounts

log = structlog.get_logger("orderflow.gateway.accounts")

State = Literal["active", "disabled", "deleted"]
T = TypeVar("T")


class AccountStateUnavailableError(Exception):
    """The account's state could not be read and none is known."""


@dataclass(slots=True)
class _Entry:
    state: State
    checked_at: float


class AccountStates:
    def __init__(
        self,
        accounts: Accounts,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
        refresh_after: float = 30.0,
        max_entries: int = 100_000,
    ) -> None:
        self._accounts = accounts
        self._max_age = max_age
        self._clock = clock
        self._refresh_after = refresh_after
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._counter: int | None = None  # the change counter the entries are valid for
        self._counter_read_at = float("-inf")
        # Bumped whenever entries are dropped, so a read that began before is not remembered.
        self._epoch = 0
        self._reading: dict[str, asyncio.Task[Any]] = {}

    async def state(self, account_id: str) -> State:
        if self._clock() - self._counter_read_at >= self._max_age:
            await self._shared("", self._follow_changes)
        entry = self._entries.get(account_id)
        if entry is not None and self._clock() - entry.checked_at < self._refresh_after:
            return entry.state
        # Keyed by epoch too: a request after a change never shares a read begun before it.
        key = f"{self._epoch}:{account_id}"
        return await self._shared(key, lambda: self._read(account_id, entry))

    def forget(self, account_id: str) -> None:
        """This process changed the account: the next request reads it again."""
        self._entries.pop(account_id, None)
        self._epoch += 1

    async def _follow_changes(self) -> None:
        try:
            counter = await self._accounts.changes()
        except Exception as exc:
            log.warning("account_changes_unreadable", error=type(exc).__name__)
            return  # the states known stand; asked again after max_age
        finally:
            self._counter_read_at = self._clock()
        if counter != self._counter:
            self._counter = counter
            self._entries.clear()
            self._epoch += 1

    async def _read(self, account_id: str, entry: _Entry | None) -> State:
        epoch = self._epoch
        try:
            account = await self._accounts.by_id(account_id)
        except Exception as exc:
            log.warning("account_state_unreadable", error=type(exc).__name__, known=bool(entry))
            if entry is None:
                raise AccountStateUnavailableError(account_id) from exc
            self._remember(account_id, entry.state)  # asked again after refresh_after
            return entry.state
        state: State = (
            "deleted" if account is None else "disabled" if account.disabled else "active"
        )
        if epoch == self._epoch:  # else a change was seen meanwhile: this read may predate it
            self._remember(account_id, state)
        return state

    async def _shared(self, key: str, read: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """One `read` per key at a time, in a task of its own: a request that gives up (its
        client went away) does not take the others' answer with it."""
        task: asyncio.Task[T] | None = self._reading.get(key)
        if task is None:
            task = asyncio.create_task(read())
            self._reading[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(task)

    def _settle(self, key: str, done: asyncio.Task[Any]) -> None:
        del self._reading[key]
        if not done.cancelled():
            done.exception()  # retrieved here; the waiters, if any, have it too

    def _remember(self, account_id: str, state: State) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()  # a flood of distinct accounts: start over rather than grow
        self._entries[account_id] = _Entry(state, self._clock())
