"""WebSocket proxying over real connections: both directions, close codes, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.gateway.gateway_harness import Stack, admin, bearer, build_stack, customer, free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")


def ws_url(stack: Stack, path: str) -> str:
    return stack.url.replace("http://", "ws://") + path


async def test_frames_flow_both_ways_with_the_callers_identity(stack: Stack) -> None:
    tokens = await customer(stack.client, "ws@example.com")
    async with connect(ws_url(stack, "/ws/echo?room=7"), additional_headers=bearer(tokens)) as ws:
        hello = json.loads(await ws.recv())
        assert hello["identity"]["email"] == "ws@example.com"
        assert hello["identity"]["roles"] == ["customer"]
        assert hello["query"] == "room=7"
        await ws.send("ping")
        assert await ws.recv() == "echo:ping"
        await ws.send(b"\x01\x02\x03")
        assert await ws.recv() == b"\x03\x02\x01"


async def test_browser_style_token_in_query_is_not_forwarded(stack: Stack) -> None:
    tokens = await customer(stack.client, "wsq@example.com")
    url = ws_url(stack, f"/ws/echo?room=1&access_token={tokens['access_token']}")
    async with connect(url, subprotocols=["chat"]) as ws:  # type: ignore[list-item]
        hello = json.loads(await ws.recv())
        assert hello["identity"]["email"] == "wsq@example.com"
        assert hello["query"] == "room=1"
        assert ws.subprotocol == "chat"


async def test_client_identity_header_is_replaced(stack: Stack) -> None:
    tokens = await customer(stack.client, "wsid@example.com")
    headers = {**bearer(tokens), "X-OrderFlow-Identity": "forged"}
    async with connect(ws_url(stack, "/ws/echo"), additional_headers=headers) as ws:
        hello = json.loads(await ws.recv())
        assert hello["identity"]["email"] == "wsid@example.com"


async def test_upstream_close_code_reaches_the_client(stack: Stack) -> None:
    tokens = await customer(stack.client, "wsclose@example.com")
    async with connect(ws_url(stack, "/ws/echo"), additional_headers=bearer(tokens)) as ws:
        await ws.recv()
        await ws.send("close:4001")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer not-a-token"}, 401),
        ({"Authorization": "Basic abc"}, 401),
    ],
)
async def test_handshake_refused_without_valid_credentials(
    stack: Stack, headers: dict[str, str], status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(stack, "/ws/echo"), additional_headers=headers):
            pass
    assert refused.value.response.status_code == status
    assert refused.value.response.headers["content-type"] == "application/problem+json"


async def test_handshake_refused_for_the_wrong_role(stack: Stack) -> None:
    tokens = await customer(stack.client, "wsrole@example.com")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(stack, "/admin/ws"), additional_headers=bearer(tokens)):
            pass
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body or b"{}")["detail"] == (
        "your role does not allow this route"
    )
    root = await admin(stack.client, stack.settings, stack.gw, "wsadmin@example.com")
    # The admin passes the gateway; the echo upstream has no /admin socket, so it refuses.
    with pytest.raises(InvalidStatus) as upstream_refused:
        async with connect(ws_url(stack, "/admin/ws"), additional_headers=bearer(root)):
            pass
    body = json.loads(upstream_refused.value.response.body or b"{}")
    assert body["reason"] == "upstream_refused"


async def test_path_tricks_refused_on_websockets_too(stack: Stack) -> None:
    tokens = await customer(stack.client, "wstrick@example.com")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(stack, "//ws/echo"), additional_headers=bearer(tokens)):
            pass
    assert refused.value.response.status_code == 400


async def test_unreachable_websocket_upstream_is_502(tmp_path: Path) -> None:
    routes = [{"prefix": "/ws", "upstream": f"http://127.0.0.1:{free_port()}"}]
    async with build_stack(tmp_path, routes) as down:
        tokens = await customer(down.client, "wsdown@example.com")
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(down, "/ws/echo"), additional_headers=bearer(tokens)):
                pass
    assert refused.value.response.status_code == 502
