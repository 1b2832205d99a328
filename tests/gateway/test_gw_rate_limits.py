"""Login and registration limits per IP and per account: 429 with Retry-After."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.gateway.gateway_harness import PASSWORD, build_stack, register


async def test_failed_logins_lock_the_account_not_the_address(tmp_path: Path) -> None:
    async with build_stack(tmp_path, login_account_limit=3) as stack:
        await register(stack.client, "lock@example.com")
        await register(stack.client, "other@example.com")
        wrong = {"username": "lock@example.com", "password": "wrong password"}
        for _ in range(3):
            assert (await stack.client.post("/auth/token", data=wrong)).status_code == 401
        # Now even the right password is refused, so guessing learns nothing more.
        right = {"username": "lock@example.com", "password": PASSWORD}
        limited = await stack.client.post("/auth/token", data=right)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        assert limited.headers["content-type"] == "application/problem+json"
        # Unknown accounts are limited the same way, so the limit reveals nothing either.
        ghost = {"username": "ghost@example.com", "password": "wrong password"}
        for _ in range(3):
            assert (await stack.client.post("/auth/token", data=ghost)).status_code == 401
        assert (await stack.client.post("/auth/token", data=ghost)).status_code == 429
        other = {"username": "other@example.com", "password": PASSWORD}
        assert (await stack.client.post("/auth/token", data=other)).status_code == 200


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


async def test_parallel_guesses_cannot_outrun_the_account_limit(tmp_path: Path) -> None:
    async with build_stack(tmp_path, login_account_limit=3, login_ip_limit=100) as stack:
        await register(stack.client, "race@example.com")
        wrong = {"username": "race@example.com", "password": "wrong password"}
        # All at once: each password check takes a while, and every guess was counted before it.
        statuses = await asyncio.gather(
            *(stack.client.post("/auth/token", data=wrong) for _ in range(12))
        )
        assert sorted(r.status_code for r in statuses) == [401] * 3 + [429] * 9


async def test_a_successful_login_does_not_count_against_the_account(tmp_path: Path) -> None:
    async with build_stack(tmp_path, login_account_limit=2, login_ip_limit=100) as stack:
        await register(stack.client, "ok@example.com")
        right = {"username": "ok@example.com", "password": PASSWORD}
        statuses = [
            (await stack.client.post("/auth/token", data=right)).status_code for _ in range(4)
        ]
        assert statuses == [200] * 4
