"""Resume without gaps or duplicates, many subscribers, and a client that stops reading."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from datetime import datetime

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from orderflow.domain.identity import Identity
from tests.stream.clients import (
    FINAL,
    Shopper,
    WsClient,
    collect_until_final,
    place,
    sign_up,
    sse_events,
    timeline,
)
from tests.stream.conftest import Deployment


def _changes(messages: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(m["order_id"], m["version"]) for m in messages if m["type"] == "status"]


async def test_websocket_resume_mid_run_ends_with_every_change_once(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        ada = await sign_up(http, deployment.public)
        received: list[dict[str, object]] = []
        async with WsClient.open(ada, scope="mine") as ws:
            placing = asyncio.gather(*(place(http, ada) for _ in range(12)))
            while len(ws.statuses()) < 8:  # mid-run: some orders half way, some not placed yet
                await ws.next(within=30)
            received += ws.messages
            last = ws.last_event_id()
        ids = await placing
        await asyncio.sleep(1.0)  # changes happen while Ada is away
        # Back through the other gateway (the other stream process in the distributed shapes).
        back = Shopper(deployment.gateways[-1], ada.token, ada.email)
        async with WsClient.open(back, scope="mine", last_event_id=last) as ws:
            await collect_until_final(ws, set(ids) - _final_seen(received), within=90)
            received += ws.messages
        statuses = [m for m in received if m["type"] == "status"]
        assert len(_changes(statuses)) == len(set(_changes(statuses))), "a change came twice"
        for order_id in ids:
            mine = [m for m in statuses if m["order_id"] == order_id]
            expected = await timeline(http, ada, order_id)
            assert [(m["version"], m["status"]) for m in mine] == [
                (e["seq"], e["status"]) for e in expected
            ]
            assert expected[-1]["status"] in FINAL


def _final_seen(messages: list[dict[str, object]]) -> set[str]:
    return {str(m["order_id"]) for m in messages if m["type"] == "status" and m["status"] in FINAL}


async def test_sse_resume_with_last_event_id(deployment: Deployment) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        ada = await sign_up(http, deployment.public)
        seen: list[dict[str, object]] = []
        last: str | None = None
        url = f"{deployment.public}/events"
        placing: asyncio.Future[list[str]] | None = None
        async for event, event_id, data in sse_events(http, url, ada.auth):
            last = event_id or last
            if event == "subscribed":
                placing = asyncio.gather(*(place(http, ada) for _ in range(6)))
            if event == "status":
                seen.append(data)
                if len(seen) == 5:
                    break  # the connection drops
        assert placing is not None
        assert last is not None
        ids = await placing
        await asyncio.sleep(1.0)
        headers = {**ada.auth, "Last-Event-ID": last}
        done: set[str] = _final_seen(seen)
        async for event, _, data in sse_events(http, f"{deployment.gateways[-1]}/events", headers):
            if event == "status":
                seen.append(data)
                if data["status"] in FINAL:
                    done.add(str(data["order_id"]))
                if done >= set(ids):
                    break
        assert len(_changes(seen)) == len(set(_changes(seen)))
        for order_id in ids:
            expected = await timeline(http, ada, order_id)
            assert [m["version"] for m in seen if m["order_id"] == order_id] == [
                e["seq"] for e in expected
            ]


async def test_500_subscribers_each_get_every_change_of_their_orders(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        shoppers = await asyncio.gather(
            *(sign_up(http, deployment.gateways[i % len(deployment.gateways)]) for i in range(50))
        )
        watchers = [(s, n) for s in shoppers for n in range(10)]  # 500 connections
        async with _Many(watchers) as clients:
            orders = await asyncio.gather(*(place(http, s) for s in shoppers))
            await asyncio.gather(
                *(
                    collect_until_final(c, {orders[i // 10]}, within=120)
                    for i, c in enumerate(clients)
                )
            )
            for n, shopper in enumerate(shoppers):
                expected = [e["status"] for e in await timeline(http, shopper, orders[n])]
                for client in clients[n * 10 : n * 10 + 10]:
                    assert [m["status"] for m in client.statuses()] == expected


class _Many:
    """Many WebSocket subscribers open at once."""

    def __init__(self, watchers: list[tuple[Shopper, int]]) -> None:
        self.watchers = watchers
        self.stack: list[object] = []

    async def __aenter__(self) -> list[WsClient]:
        self.contexts = [WsClient.open(s, scope="mine") for s, _ in self.watchers]
        clients: list[WsClient] = []
        for batch in range(0, len(self.contexts), 50):
            clients += await asyncio.gather(
                *(c.__aenter__() for c in self.contexts[batch : batch + 50])
            )
        return clients

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(
            *(c.__aexit__(None, None, None) for c in self.contexts), return_exceptions=True
        )


async def test_a_client_that_stops_reading_is_dropped_while_others_keep_up(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        ada = await sign_up(http, deployment.public)
        bob = await sign_up(http, deployment.public)
        # The slow one: an admin watching everything who never reads, with a tiny socket
        # buffer so the backlog piles up in the stream process rather than in the kernel. It
        # talks to the stream process itself, as the gateway would (a signed assertion): in
        # between, the gateway's own socket buffers would first soak up megabytes.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        host, port = deployment.streams[0].removeprefix("http://").split(":")
        sock.connect((host, int(port)))
        url = deployment.streams[0].replace("http", "ws", 1) + "/ws"
        headers = deployment.assertion(Identity(str(uuid.uuid4()), frozenset({"admin"})))
        async with connect(
            url, sock=sock, additional_headers=headers, max_queue=1, ping_interval=None
        ) as slow:
            await slow.send('{"type": "subscribe", "scope": "all"}')
            async with WsClient.open(ada, scope="mine") as fast:
                before = _subscriptions(deployment)  # the slow one and the fast one
                assert before == 2
                # Bob's orders flood in until the slow one has been let go (or time runs out);
                # meanwhile Ada's own changes must keep reaching her quickly: the time from a
                # change being decided (`at`) to its arrival at her client.
                load = asyncio.create_task(_flood_until_dropped(http, bob, deployment, before))
                latencies: list[float] = []
                while not load.done() or len(latencies) < 4:
                    order_id = await place(http, ada)
                    while True:
                        m = await fast.next(within=120)
                        if m["type"] == "status":
                            at = datetime.fromisoformat(m["at"]).timestamp()
                            latencies.append(time.time() - at)
                            if m["order_id"] == order_id and m["status"] in FINAL:
                                break
                assert await load, "the slow subscriber was never dropped"
                assert max(latencies) < 3.0, (deployment.shape, sorted(latencies)[-5:])
            # Reading again, the slow one finds its connection ended: with the close frame and its
            # reason when that still fit in the socket, else cut (the server waits 2 s at most
            # for a client that does not read, then lets go of it).
            with pytest.raises(ConnectionClosed) as closed:
                await _read_to_the_end(slow)
            frame = closed.value.rcvd
            assert frame is None or (frame.code, frame.reason[:8]) == (1013, "too_slow"), frame


async def _flood_until_dropped(
    http: httpx.AsyncClient, who: Shopper, deployment: Deployment, count: int
) -> bool:
    # About 80 orders/s: within what every shape sustains, so a backlog in the pipeline itself
    # does not pass for the slow client's doing.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        started = time.monotonic()
        await asyncio.gather(*(place(http, who) for _ in range(20)))
        if _subscriptions(deployment) < count:
            return True
        await asyncio.sleep(max(0.0, 0.25 - (time.monotonic() - started)))
    return False


async def _read_to_the_end(conn: ClientConnection) -> None:
    while True:
        await asyncio.wait_for(conn.recv(), 30)


def _subscriptions(deployment: Deployment) -> int:
    return sum(
        int(httpx.get(f"{s}/readyz", timeout=5).json()["subscriptions"]) for s in deployment.streams
    )
