"""Bench customers against a stand-in for the gateway's auth endpoints: accounts are registered
only when logging in fails, and tokens are renewed with the refresh token before they expire."""

from __future__ import annotations

import asyncio
import itertools

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from orderflow.tools.bench.customers import keep_fresh, login_customers


def fake_gateway(accounts: dict[str, str], calls: list[str]) -> web.Application:
    serial = itertools.count()

    async def register(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append(f"register {body['email']}")
        accounts.setdefault(body["email"], body["password"])
        return web.json_response({"status": "registered"}, status=202)

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") == "refresh_token":
            calls.append("refresh")
        elif accounts.get(str(form["username"])) != form["password"]:
            return web.json_response({"title": "Unauthorized"}, status=401)
        n = next(serial)
        return web.json_response(
            {"access_token": f"access-{n}", "expires_in": 1, "refresh_token": f"refresh-{n}"}
        )

    app = web.Application()
    app.router.add_post("/auth/register", register)
    app.router.add_post("/auth/token", token)
    return app


async def test_new_customers_are_registered_and_known_ones_just_log_in() -> None:
    accounts, calls = {"run-1@orderflow.local": "secret-pw"}, []
    async with (
        TestServer(fake_gateway(accounts, calls)) as server,
        aiohttp.ClientSession(str(server.make_url(""))) as client,
    ):
        customers = await login_customers(client, 2, "run", "secret-pw")
    assert calls == ["register run-2@orderflow.local"]
    assert [c.label for c in customers] == ["run-1@orderflow.local", "run-2@orderflow.local"]
    assert all(c.headers["Authorization"].startswith("Bearer access-") for c in customers)


async def test_tokens_are_renewed_before_they_expire() -> None:
    calls: list[str] = []
    async with (
        TestServer(fake_gateway({"r-1@orderflow.local": "pw-123456"}, calls)) as server,
        aiohttp.ClientSession(str(server.make_url(""))) as client,
    ):
        [customer] = await login_customers(client, 1, "r", "pw-123456")
        first = customer.headers["Authorization"]
        keeper = asyncio.create_task(keep_fresh(client, [customer]))
        await asyncio.sleep(1.3)
        keeper.cancel()
    assert "refresh" in calls
    assert customer.headers["Authorization"] != first
