"""Real clients of the live stream, through the gateway: accounts, orders, WebSocket and SSE."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from tests.support.system import order_body

FINAL = {"confirmed", "rejected", "payment_failed", "cancelled", "failed"}


@dataclass
class Shopper:
    base: str
    token: str
    email: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def ws_url(self) -> str:
        return self.base.replace("http", "ws", 1) + "/ws"


async def sign_up(client: httpx.AsyncClient, base: str, email: str | None = None) -> Shopper:
    email = email or f"shopper-{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery"
    registered = await client.post(
        f"{base}/auth/register", json={"email": email, "password": password, "name": "Shopper"}
    )
    assert registered.status_code == 202, registered.text
    return await log_in(client, base, email, password)


async def log_in(client: httpx.AsyncClient, base: str, email: str, password: str) -> Shopper:
    answer = await client.post(f"{base}/auth/token", data={"username": email, "password": password})
    assert answer.status_code == 200, answer.text
    return Shopper(base, answer.json()["access_token"], email)


async def place(client: httpx.AsyncClient, who: Shopper, token: str = "tok_visa") -> str:
    answer = await client.post(
        f"{who.base}/api/v1/orders",
        json=order_body([("MUG-WHT", 1)], token),
        headers={**who.auth, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def timeline(client: httpx.AsyncClient, who: Shopper, order_id: str) -> list[dict[str, Any]]:
    answer = await client.get(f"{who.base}/api/v1/orders/{order_id}", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json()["timeline"] if e["status"] != e["previous_status"]]


async def settled(client: httpx.AsyncClient, who: Shopper, ids: list[str], within: float) -> None:
    deadline = time.monotonic() + within
    for order_id in ids:
        while (await timeline(client, who, order_id))[-1]["status"] not in FINAL:
            assert time.monotonic() < deadline, f"order {order_id} did not settle"
            await asyncio.sleep(0.2)


@dataclass
class WsClient:
    """A WebSocket subscriber that records every message it receives."""

    conn: ClientConnection
    messages: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, who: Shopper, **subscribe: Any) -> AsyncIterator[WsClient]:
        async with connect(who.ws_url, additional_headers=who.auth, open_timeout=10) as conn:
            client = cls(conn)
            await client.send({"type": "subscribe", **subscribe})
            await client.until(lambda m: m["type"] == "subscribed", within=10)
            yield client

    async def send(self, message: dict[str, Any]) -> None:
        await self.conn.send(orjson.dumps(message).decode())

    async def next(self, within: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), within)
        message: dict[str, Any] = orjson.loads(raw)
        self.messages.append(message)
        return message

    async def until(self, done: Any, within: float) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            message = await self.next(max(0.01, deadline - time.monotonic()))
            if done(message):
                return message

    def statuses(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "status"]

    def last_event_id(self) -> str | None:
        ids = [m["id"] for m in self.messages if m["type"] in ("status", "subscribed")]
        return ids[-1] if ids else None


async def collect_until_final(client: WsClient, order_ids: set[str], within: float) -> None:
    """Read until every one of these orders has reached a final status (counting what the
    client received already, e.g. a catch-up sent before `subscribed`)."""
    left = set(order_ids) - {m["order_id"] for m in client.statuses() if m["status"] in FINAL}
    deadline = time.monotonic() + within
    while left:
        message = await client.next(max(0.01, deadline - time.monotonic()))
        if message["type"] == "status" and message["status"] in FINAL:
            left.discard(message["order_id"])


async def sse_events(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> AsyncIterator[tuple[str, str | None, dict[str, Any]]]:
    """(event, id, data) of each SSE event, parsed as the spec says (comments skipped)."""
    async with client.stream("GET", url, headers=headers, timeout=None) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        event, event_id, data = "message", None, ""
        async for line in response.aiter_lines():
            if line == "":
                if data:
                    yield event, event_id, orjson.loads(data)
                event, event_id, data = "message", None, ""
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "id":
                    event_id = value
                elif name == "data":
                    data += value
