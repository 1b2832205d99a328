"""The per-process view of account states: kept while the database's change counter stands
(asked at most once per max_age), dropped when it moves, refreshed after refresh_after anyway;
a change made here is seen at once; concurrent requests share one read, and a read begun before
a change is not remembered; a database that cannot be read keeps the last known state, and an
account with none is refused (a 503), never let through."""

from __future__ import annotations

import asyncio

import pytest
from starlette.datastructures import Headers

from orderflow.domain.identity import Identity
from orderflow.ports.accounts import Account, ApiKey
from orderflow.services.gateway.account_state import AccountStates, AccountStateUnavailableError
from orderflow.services.gateway.authn import Authenticator
from orderflow.web.problems import ProblemError


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeAccounts:
    """What AccountStates reads: by_id and the change counter, each counted; `failing` makes
    both raise, `gate` holds by_id until set."""

    def __init__(self) -> None:
        self.rows: dict[str, Account] = {}
        self.counter = 0
        self.reads = 0
        self.counter_reads = 0
        self.failing = False
        self.gate: asyncio.Event | None = None

    def add(self, account_id: str, disabled: bool = False) -> None:
        self.rows[account_id] = Account(
            account_id, "a@example.com", "A", "h", frozenset(), disabled
        )

    def change(self, account_id: str, disabled: bool | None) -> None:
        """What another process does: change the row and move the counter."""
        if disabled is None:
            del self.rows[account_id]
        else:
            self.add(account_id, disabled)
        self.counter += 1

    async def changes(self) -> int:
        self.counter_reads += 1
        if self.failing:
            raise ConnectionError("database down")
        return self.counter

    async def by_id(self, account_id: str) -> Account | None:
        self.reads += 1
        row = self.rows.get(account_id)  # what the database answers now, even if slow to arrive
        if self.gate is not None and account_id != "unhindered":
            await self.gate.wait()
        if self.failing:
            raise ConnectionError("database down")
        return row


def _states(accounts: FakeAccounts, clock: FakeClock) -> AccountStates:
    return AccountStates(accounts, max_age=0.5, clock=clock, refresh_after=30)  # type: ignore[arg-type]


async def test_a_state_stands_until_the_counter_moves() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    states = _states(accounts, clock)
    assert await states.state("a") == "active"
    clock.now += 10  # quiet: no change anywhere, no further read of the account
    assert await states.state("a") == "active"
    assert (accounts.reads, accounts.counter_reads) == (1, 2)

    accounts.change("a", disabled=True)  # by another process
    clock.now += 0.49
    assert await states.state("a") == "active"  # the counter is asked at most every 0.5 s
    assert accounts.counter_reads == 2
    clock.now += 0.01
    assert await states.state("a") == "disabled"
    accounts.change("a", disabled=None)
    clock.now += 0.5
    assert await states.state("a") == "deleted"
    assert accounts.reads == 3


async def test_an_entry_is_read_again_after_refresh_after() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    states = _states(accounts, clock)
    assert await states.state("a") == "active"
    accounts.add("a", disabled=True)  # behind the counter's back (a hand-edited row)
    clock.now += 29
    assert await states.state("a") == "active"
    clock.now += 1
    assert await states.state("a") == "disabled"


async def test_a_change_made_here_is_seen_at_once() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    states = _states(accounts, clock)
    assert await states.state("a") == "active"
    accounts.change("a", disabled=True)
    states.forget("a")
    assert await states.state("a") == "disabled"


async def test_concurrent_requests_share_one_read() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    accounts.gate = asyncio.Event()
    states = _states(accounts, clock)
    waiting = [asyncio.create_task(states.state("a")) for _ in range(20)]
    while accounts.reads < 1:  # noqa: ASYNC110 (scheduling points until the read began)
        await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)  # the others reach the shared read (scheduling points)
    accounts.gate.set()
    assert await asyncio.gather(*waiting) == ["active"] * 20
    assert (accounts.reads, accounts.counter_reads) == (1, 1)


async def _read_under_way(accounts: FakeAccounts, states: AccountStates) -> asyncio.Task[str]:
    """A request for account "a" whose read has the row as it is now, but has not answered."""
    accounts.gate = asyncio.Event()
    reads = accounts.reads
    task = asyncio.create_task(states.state("a"))
    while accounts.reads == reads:  # noqa: ASYNC110 (scheduling points until the read began)
        await asyncio.sleep(0)
    return task


async def test_a_read_begun_before_a_change_is_not_kept() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    accounts.add("unhindered")
    states = _states(accounts, clock)
    early = await _read_under_way(accounts, states)
    accounts.change("a", disabled=True)  # elsewhere
    clock.now += 0.5
    # Another account's request: this process sees the counter move.
    assert await states.state("unhindered") == "active"
    assert accounts.gate is not None
    accounts.gate.set()
    assert await early == "active"  # it asked before the change
    assert await states.state("a") == "disabled"  # and that answer was not kept


async def test_a_request_after_a_change_does_not_share_a_read_from_before() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    accounts.add("unhindered")
    states = _states(accounts, clock)
    early = await _read_under_way(accounts, states)
    accounts.change("a", disabled=True)
    clock.now += 0.5
    assert await states.state("unhindered") == "active"
    later = asyncio.create_task(states.state("a"))
    assert accounts.gate is not None
    accounts.gate.set()
    assert await later == "disabled"
    assert await early == "active"


async def test_a_request_that_gives_up_does_not_fail_the_others() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    states = _states(accounts, clock)
    first = await _read_under_way(accounts, states)
    second = asyncio.create_task(states.state("a"))
    await asyncio.sleep(0)
    first.cancel()  # its client went away
    assert accounts.gate is not None
    accounts.gate.set()
    assert await second == "active"
    assert first.cancelled()
    assert accounts.reads == 1
    assert await states.state("a") == "active"  # remembered
    assert accounts.reads == 1


async def test_an_unreadable_database_keeps_the_last_known_state() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a", disabled=True)
    states = _states(accounts, clock)
    assert await states.state("a") == "disabled"
    accounts.failing = True
    clock.now += 31  # the counter and the entry are both due
    assert await states.state("a") == "disabled"
    reads = accounts.reads
    assert await states.state("a") == "disabled"
    assert accounts.reads == reads  # not asked again (and logged) at every request
    with pytest.raises(AccountStateUnavailableError):
        await states.state("never-seen")


class OneToken:
    ttl = 900

    def verify_until(self, token: str) -> tuple[Identity, float]:
        return Identity(subject=token, roles=frozenset()), 2e9


class OneKey:
    async def authenticate(self, credential: str) -> ApiKey | None:
        return ApiKey("k", "k", frozenset(), "creator", None, None)  # type: ignore[arg-type]


async def test_an_account_nobody_can_check_is_a_503_not_a_pass() -> None:
    accounts = FakeAccounts()
    accounts.failing = True
    states = _states(accounts, FakeClock())
    authenticator = Authenticator(OneToken(), OneKey(), states)  # type: ignore[arg-type]
    for headers in ({"authorization": "Bearer someone"}, {"x-api-key": "ofk_k.s"}):
        with pytest.raises(ProblemError) as refused:
            await authenticator.authenticate(Headers(headers))
        assert refused.value.status_code == 503
        assert refused.value.extra["reason"] == "accounts_unavailable"
        assert refused.value.headers["Retry-After"] == "1"
