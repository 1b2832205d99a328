"""Login and registration limits: 429 problem+json with Retry-After. A guesser is slowed per
account and client with growing delays, and all clients together per account only briefly, so
nobody can lock the owner out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.gateway.gateway_harness import PASSWORD, Stack, build_stack, register

WRONG = "wrong password"


async def _login(stack: Stack, email: str, password: str, ip: str) -> httpx.Response:
    return await stack.client.post(
        "/auth/token",
        data={"username": email, "password": password},
        headers={"X-Forwarded-For": ip},
    )


def _limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == "rate_limited"
    return int(response.headers["retry-after"])


async def test_a_guesser_is_slowed_and_the_owner_elsewhere_is_not(tmp_path: Path) -> None:
    async with build_stack(
        tmp_path, trust_forwarded_for=True, login_client_limits=[(3, 60)], login_account_limit=50
    ) as stack:
        await register(stack.client, "lock@example.com")
        for _ in range(3):
            assert (await _login(stack, "lock@example.com", WRONG, "10.0.0.66")).status_code == 401
        # From the guessing client even the right password is refused: guessing learns nothing.
        assert 0 < _limited(await _login(stack, "lock@example.com", PASSWORD, "10.0.0.66")) <= 60
        # The owner, from anywhere else, is not locked out.
        assert (await _login(stack, "lock@example.com", PASSWORD, "10.0.0.7")).status_code == 200
        # Unknown accounts are limited the same way, so the limit reveals nothing either.
        for _ in range(3):
            assert (await _login(stack, "ghost@example.com", WRONG, "10.0.0.66")).status_code == 401
        _limited(await _login(stack, "ghost@example.com", WRONG, "10.0.0.66"))


async def test_the_delays_grow_with_the_failures(tmp_path: Path) -> None:
    tiers = [(2, 1), (3, 3600)]  # 2 a second, then 3 an hour
    async with build_stack(
        tmp_path, trust_forwarded_for=True, login_client_limits=tiers, login_account_limit=50
    ) as stack:
        statuses = [
            (await _login(stack, "slow@example.com", WRONG, "10.0.0.9")).status_code
            for _ in range(2)
        ]
        assert statuses == [401, 401]
        first = _limited(await _login(stack, "slow@example.com", WRONG, "10.0.0.9"))
        assert first == 1
        await asyncio.sleep(first)  # the delay itself is the thing tested: let it pass
        assert (await _login(stack, "slow@example.com", WRONG, "10.0.0.9")).status_code == 401
        second = _limited(await _login(stack, "slow@example.com", WRONG, "10.0.0.9"))
        assert second > 3000  # the next tier: about an hour


async def test_all_clients_together_are_capped_per_account_briefly(tmp_path: Path) -> None:
    async with build_stack(
        tmp_path, trust_forwarded_for=True, login_account_limit=4, login_account_window=30
    ) as stack:
        await register(stack.client, "target@example.com")
        for n in range(4):  # a guesser with many addresses
            guess = await _login(stack, "target@example.com", WRONG, f"10.1.0.{n}")
            assert guess.status_code == 401
        # Now every client waits, the owner too, but for the rest of a short window only.
        assert 0 < _limited(await _login(stack, "target@example.com", PASSWORD, "10.2.0.1")) <= 30
        await register(stack.client, "bystander@example.com")
        assert (
            await _login(stack, "bystander@example.com", PASSWORD, "10.1.0.1")
        ).status_code == 200


async def test_a_successful_login_clears_the_clients_count(tmp_path: Path) -> None:
    async with build_stack(tmp_path, login_client_limits=[(2, 60)]) as stack:
        await register(stack.client, "ok@example.com")
        statuses = [
            (await _login(stack, "ok@example.com", password, "-")).status_code
            for password in (WRONG, PASSWORD) * 3
        ]
        assert statuses == [401, 200] * 3


async def test_parallel_guesses_cannot_outrun_the_account_limit(tmp_path: Path) -> None:
    async with build_stack(tmp_path, login_account_limit=3) as stack:
        await register(stack.client, "race@example.com")
        wrong = {"username": "race@example.com", "password": WRONG}
        # All at once: each password check takes a while, and every guess was counted before it.
        statuses = await asyncio.gather(
            *(stack.client.post("/auth/token", data=wrong) for _ in range(12))
        )
        assert sorted(r.status_code for r in statuses) == [401] * 3 + [429] * 9


async def test_logins_per_ip(tmp_path: Path) -> None:
    async with build_stack(tmp_path, login_ip_limit=4) as stack:
        await register(stack.client, "ip@example.com")
        form = {"username": "ip@example.com", "password": PASSWORD}
        statuses = [
            (await stack.client.post("/auth/token", data=form)).status_code for _ in range(5)
        ]
        assert statuses == [200, 200, 200, 200, 429]


async def test_registrations_per_ip(tmp_path: Path) -> None:
    async with build_stack(tmp_path, register_ip_limit=2) as stack:
        await register(stack.client, "r1@example.com")
        await register(stack.client, "r2@example.com")
        third = await stack.client.post(
            "/auth/register", json={"email": "r3@example.com", "password": PASSWORD, "name": "R"}
        )
        assert third.status_code == 429
        assert "retry-after" in third.headers
