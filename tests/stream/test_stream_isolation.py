"""Who sees what: a customer only their own orders (also when asking by id), an admin all."""

from __future__ import annotations

import asyncio

import httpx

from tests.stream.clients import (
    Shopper,
    WsClient,
    collect_until_final,
    log_in,
    place,
    sign_up,
    sse_events,
    timeline,
)
from tests.stream.conftest import ADMIN, Deployment


def _by_order(messages: list[dict[str, object]]) -> dict[object, list[object]]:
    seen: dict[object, list[object]] = {}
    for m in messages:
        if m["type"] == "status":
            seen.setdefault(m["order_id"], []).append(m["status"])
    return seen


async def _expected(
    client: httpx.AsyncClient, who: Shopper, ids: list[str]
) -> dict[str, list[str]]:
    return {i: [e["status"] for e in await timeline(client, who, i)] for i in ids}


async def test_websocket_customers_see_only_their_own_orders_and_admins_all(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        ada = await sign_up(http, deployment.public)
        bob = await sign_up(http, deployment.gateways[-1])  # the other stream process, if any
        admin = await log_in(http, deployment.public, *ADMIN)
        async with (
            WsClient.open(ada, scope="mine") as ada_ws,
            WsClient.open(bob, scope="mine") as bob_ws,
            WsClient.open(admin, scope="all") as admin_ws,
        ):
            ada_orders = [await place(http, ada), await place(http, ada, "tok_decline")]
            bob_orders = [await place(http, bob)]
            # Bob asks for Ada's order by id: told it does not exist, sent nothing of it.
            await bob_ws.send({"type": "subscribe", "order_id": ada_orders[0]})
            refused = await bob_ws.until(lambda m: m["type"] == "error", within=10)
            assert refused["code"] == "not_found"
            await bob_ws.send({"type": "subscribe", "scope": "all"})
            refused = await bob_ws.until(lambda m: m["type"] == "error", within=10)
            assert refused["code"] == "forbidden"

            await collect_until_final(ada_ws, set(ada_orders), within=60)
            await collect_until_final(bob_ws, set(bob_orders), within=60)
            await collect_until_final(admin_ws, set(ada_orders + bob_orders), within=60)

            assert _by_order(ada_ws.messages) == await _expected(http, ada, ada_orders)
            assert _by_order(bob_ws.messages) == await _expected(http, bob, bob_orders)
            everyone = _by_order(admin_ws.messages)
            assert {k: everyone[k] for k in ada_orders} == await _expected(http, ada, ada_orders)
            assert {k: everyone[k] for k in bob_orders} == await _expected(http, bob, bob_orders)
            assert _by_order(ada_ws.messages)[ada_orders[1]][-1] == "payment_failed"
            assert all("customer_id" in m for m in admin_ws.statuses())
            assert not any("customer_id" in m for m in ada_ws.statuses())


async def test_sse_isolation_one_order_scope_and_resync(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        ada = await sign_up(http, deployment.public)
        bob = await sign_up(http, deployment.public)
        first = await place(http, ada)
        # Bob asking for Ada's order by id gets the same answer as for a missing order.
        for asked in (first, "00000000-0000-0000-0000-000000000000"):
            refused = await http.get(
                f"{deployment.public}/events", params={"order_id": asked}, headers=bob.auth
            )
            assert refused.status_code == 404, refused.text
        assert (await http.get(f"{deployment.public}/events")).status_code == 401

        # Ada's stream: her next order, live, in order.
        got: list[str] = []
        placing: asyncio.Task[str] | None = None
        async for event, _, data in sse_events(http, f"{deployment.public}/events", ada.auth):
            if event == "subscribed":
                placing = asyncio.create_task(place(http, ada))
            elif event == "status":
                if data["order_id"] == first:  # still settling: its changes are Ada's too
                    continue
                got.append(data["status"])
                if data["status"] == "confirmed":
                    break
        assert placing is not None
        second = await placing
        assert got == [e["status"] for e in await timeline(http, ada, second)]

        # An event id from before the retained window: told so explicitly, then live.
        url = f"{deployment.public}/events?order_id={second}&last_event_id=0"
        async for event, _, data in sse_events(http, url, ada.auth):
            assert (event, data["type"]) == ("resync_required", "resync_required")
            assert data["reason"] == "event_id_too_old"
            break
