"""WebSocket proxying: the upstream handshake first (so a refusal reaches the client as an HTTP
answer), then frames relayed both ways until either side closes, with its close code."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from orderflow.services.gateway.routes import RouteSpec
from orderflow.services.gateway.settings import GatewaySettings
from orderflow.web.problems import ProblemError

log = structlog.get_logger("orderflow.gateway.websocket")
_HANDSHAKE = (b"sec-websocket-", b"origin")


async def open_upstream(
    websocket: WebSocket,
    route: RouteSpec,
    headers: list[tuple[bytes, bytes]],
    query: str,
    settings: GatewaySettings,
) -> ClientConnection:
    scheme_url = route.upstream.replace("http", "ws", 1)
    url = scheme_url + (websocket.scope.get("raw_path") or b"/").decode("ascii")
    if query:
        url = f"{url}?{query}"
    forwarded = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in headers
        if not k.startswith(_HANDSHAKE)
    ]
    origin = websocket.headers.get("origin")
    subprotocols = [Subprotocol(p) for p in websocket.scope.get("subprotocols", [])]
    try:
        return await connect(
            url,
            additional_headers=forwarded,
            subprotocols=subprotocols or None,
            origin=origin,  # type: ignore[arg-type]
            open_timeout=settings.connect_timeout,
            proxy=None,
            user_agent_header=None,
            ping_interval=None,  # the client's own pings travel through as frames
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        code = status if 400 <= status < 500 else 502
        raise ProblemError(
            code, detail="the upstream refused the WebSocket", reason="upstream_refused"
        ) from exc
    except TimeoutError as exc:
        raise ProblemError(
            504, detail="the upstream did not answer in time", reason="timeout"
        ) from exc
    except (OSError, InvalidHandshake) as exc:
        raise ProblemError(
            502, detail="the upstream could not be reached", reason="unreachable"
        ) from exc


EXPIRED = 4401  # the credential that opened the connection expired: sign in again


async def relay(
    websocket: WebSocket, upstream: ClientConnection, deadline: float | None = None
) -> None:
    """Relay until either side closes or, at `deadline` (epoch seconds), the credential that
    opened the connection expires: then both sides are closed with EXPIRED."""
    await websocket.accept(subprotocol=upstream.subprotocol)
    to_upstream = asyncio.create_task(_client_to_upstream(websocket, upstream))
    to_client = asyncio.create_task(_upstream_to_client(websocket, upstream))
    timeout = None if deadline is None else max(0.0, deadline - time.time())
    try:
        done, _ = await asyncio.wait(
            {to_upstream, to_client}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            log.info("websocket credential expired")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(EXPIRED, "credentials expired"), 2.0)
    finally:
        for task in (to_upstream, to_client):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await upstream.close()


async def _client_to_upstream(websocket: WebSocket, upstream: ClientConnection) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            await upstream.close(code=_closable(message.get("code", 1000)))
            return
        if message.get("text") is not None:
            await upstream.send(message["text"])
        elif message.get("bytes") is not None:
            await upstream.send(message["bytes"])


async def _upstream_to_client(websocket: WebSocket, upstream: ClientConnection) -> None:
    try:
        async for frame in upstream:
            if isinstance(frame, str):
                await websocket.send_text(frame)
            else:
                await websocket.send_bytes(frame)
    except ConnectionClosed:
        pass
    code = upstream.close_code or 1000
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code=_closable(code), reason=upstream.close_reason or None)


def _closable(code: int) -> int:
    # 1005/1006/1015 describe a close but may not be sent in one.
    return 1000 if code in (1005, 1006, 1015) else code
