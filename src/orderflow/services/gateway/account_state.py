"""Whether an account may still act: a disabled or deleted account is refused on its next
request, with a valid access token or through an API key it created.

Access tokens are checked offline (15 minutes of validity), so the gateway looks the account up
too. Each process keeps the answer per account for at most `max_age` seconds (0.5 s by default):
a change made through any gateway process or the CLI reaches every process within that, while a
busy account costs one primary-key read per process per `max_age`, not one per request. A change
made through this process is seen at once (`forget`). Concurrent requests of an account whose
answer is stale share one read.

When the database cannot be read, the last answer known stands (logged); an account with none
is refused with AccountStateUnavailableError (a 503), never let through unchecked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

from orderflow.ports.accounts import Accounts

log = structlog.get_logger("orderflow.gateway.accounts")

State = Literal["active", "disabled", "deleted"]


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
        max_entries: int = 100_000,
    ) -> None:
        self._accounts = accounts
        self._max_age = max_age
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._reading: dict[str, asyncio.Task[State]] = {}

    async def state(self, account_id: str) -> State:
        entry = self._entries.get(account_id)
        if entry is not None and self._clock() - entry.checked_at < self._max_age:
            return entry.state
        # One read per account at a time, in a task of its own: a request that gives up
        # (its client went away) does not take the others' answer with it.
        reading = self._reading.get(account_id)
        if reading is None:
            reading = asyncio.create_task(self._read_or_last_known(account_id, entry))
            self._reading[account_id] = reading
            reading.add_done_callback(lambda done: self._settle(account_id, done))
        return await asyncio.shield(reading)

    def _settle(self, account_id: str, done: asyncio.Task[State]) -> None:
        del self._reading[account_id]
        if not done.cancelled() and done.exception() is None:
            self._remember(account_id, done.result())

    def forget(self, account_id: str) -> None:
        """This process changed the account: the next request reads it again."""
        self._entries.pop(account_id, None)

    async def _read_or_last_known(self, account_id: str, entry: _Entry | None) -> State:
        try:
            account = await self._accounts.by_id(account_id)
        except Exception as exc:
            log.warning("account_state_unreadable", error=type(exc).__name__, known=bool(entry))
            if entry is None:
                raise AccountStateUnavailableError(account_id) from exc
            return entry.state
        if account is None:
            return "deleted"
        return "disabled" if account.disabled else "active"

    def _remember(self, account_id: str, state: State) -> None:
        if len(self._entries) >= self._max_entries:
            # Stale entries are worth nothing; drop them (all of them if none is stale).
            now = self._clock()
            fresh = {k: e for k, e in self._entries.items() if now - e.checked_at < self._max_age}
            self._entries = fresh if len(fresh) < self._max_entries else {}
        self._entries[account_id] = _Entry(state, self._clock())
