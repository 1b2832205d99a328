"""The per-process view of account states: kept for at most max_age, read again after it, at
once after a change made here, one read for concurrent requests; a database that cannot be read
keeps the last known state, and an account with none is refused (a 503), never let through."""

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
    """Only what AccountStates reads: by_id, counted; `failing` makes it raise."""

    def __init__(self) -> None:
        self.rows: dict[str, Account] = {}
        self.reads = 0
        self.failing = False
        self.gate: asyncio.Event | None = None

    def add(self, account_id: str, disabled: bool = False) -> None:
        self.rows[account_id] = Account(
            account_id, "a@example.com", "A", "h", frozenset(), disabled
        )

    async def by_id(self, account_id: str) -> Account | None:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise ConnectionError("database down")
        return self.rows.get(account_id)


def _states(accounts: FakeAccounts, clock: FakeClock) -> AccountStates:
    return AccountStates(accounts, max_age=0.5, clock=clock)  # type: ignore[arg-type]


async def test_a_state_is_kept_for_max_age_then_read_again() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    states = _states(accounts, clock)
    assert await states.state("a") == "active"
    accounts.add("a", disabled=True)  # changed by another process
    clock.now += 0.49
    assert await states.state("a") == "active"
    assert accounts.reads == 1
    clock.now += 0.01
    assert await states.state("a") == "disabled"
    del accounts.rows["a"]
    clock.now += 0.5
    assert await states.state("a") == "deleted"
    assert accounts.reads == 3


async def test_a_change_made_here_is_seen_at_once() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    states = _states(accounts, clock)
    assert await states.state("a") == "active"
    accounts.add("a", disabled=True)
    states.forget("a")
    assert await states.state("a") == "disabled"


async def test_concurrent_requests_share_one_read() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    accounts.gate = asyncio.Event()
    states = _states(accounts, clock)
    waiting = [asyncio.create_task(states.state("a")) for _ in range(20)]
    await asyncio.sleep(0)  # let every request reach the read (a scheduling point, not a wait)
    accounts.gate.set()
    assert await asyncio.gather(*waiting) == ["active"] * 20
    assert accounts.reads == 1


async def test_an_unreadable_database_keeps_the_last_known_state() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a", disabled=True)
    states = _states(accounts, clock)
    assert await states.state("a") == "disabled"
    accounts.failing = True
    clock.now += 1
    assert await states.state("a") == "disabled"
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


async def test_a_request_that_gives_up_does_not_fail_the_others() -> None:
    accounts, clock = FakeAccounts(), FakeClock()
    accounts.add("a")
    accounts.gate = asyncio.Event()
    states = _states(accounts, clock)
    first = asyncio.create_task(states.state("a"))
    await asyncio.sleep(0)  # the first request starts the read
    second = asyncio.create_task(states.state("a"))
    await asyncio.sleep(0)
    first.cancel()  # its client went away
    accounts.gate.set()
    assert await second == "active"
    assert first.cancelled()
    assert accounts.reads == 1
    assert await states.state("a") == "active"  # remembered
    assert accounts.reads == 1
