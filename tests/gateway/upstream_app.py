"""A small real upstream: it verifies the gateway's assertion like every backend must, then
echoes what it got, streams SSE, stalls, and echoes WebSocket frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from orderflow.adapters.identity.assertions import HEADER, InvalidAssertionError, load_verifier
from orderflow.domain.identity import Identity


def _describe(identity: Identity) -> dict[str, object]:
    return {
        "subject": identity.subject,
        "roles": sorted(identity.roles),
        "scopes": sorted(identity.scopes),
        "email": identity.email,
    }


def create_upstream(jwks: Path, release: asyncio.Event | None = None) -> Starlette:
    verifier = load_verifier(jwks)
    gate = release or asyncio.Event()

    def identity_of(headers: Headers) -> Identity | None:
        values = [v for k, v in headers.items() if k.lower() == HEADER.lower()]
        if len(values) != 1:
            return None
        try:
            return verifier.verify(values[0])
        except InvalidAssertionError:
            return None

    async def echo(request: Request) -> Response:
        identity = identity_of(request.headers)
        if identity is None:
            return JSONResponse({"detail": "no valid identity assertion"}, status_code=401)
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "raw_path": request.scope["raw_path"].decode(),
                "query": request.url.query,
                "identity": _describe(identity),
                "headers": [[k, v] for k, v in request.headers.items()],
                "body_length": len(body),
            },
            headers={"set-cookie": "a=1", "x-upstream": "yes"},
        )

    async def redirect(request: Request) -> Response:
        """A redirect to `?to=` (an upstream that names its own address, or another site)."""
        to = request.query_params["to"]
        headers = {"location": to, "content-location": to, "link": f'<{to}>; rel="next"'}
        return Response(status_code=302, headers=headers)

    async def slow(request: Request) -> Response:
        await asyncio.sleep(3)
        return JSONResponse({"late": True})

    async def html(request: Request) -> Response:
        return HTMLResponse("<h1>admin</h1>")

    async def big(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"x" * 16384

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    async def events(request: Request) -> Response:
        if identity_of(request.headers) is None:
            return JSONResponse({"detail": "no assertion"}, status_code=401)

        async def stream() -> AsyncIterator[bytes]:
            yield b"data: first\n\n"
            await gate.wait()  # the test releases this only after it saw the first event
            yield b"data: second\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def ws_echo(websocket: WebSocket) -> None:
        identity = identity_of(websocket.headers)
        if identity is None:
            await websocket.close(code=1008)
            return
        await websocket.accept(subprotocol=(websocket.scope.get("subprotocols") or [None])[0])
        await websocket.send_json({"identity": _describe(identity), "query": websocket.url.query})
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await websocket.send_bytes(message["bytes"][::-1])
            elif message["text"].startswith("close:"):
                await websocket.close(code=int(message["text"][6:]), reason="asked to")
                return
            else:
                await websocket.send_text("echo:" + message["text"])

    return Starlette(
        routes=[
            Route("/api/slow", slow),
            Route("/api/redirect", redirect),
            # Only `/api/shop/items/` exists: Starlette redirects `/api/shop/items` to it, with
            # an absolute URL built from the Host the gateway sent (the internal address).
            Mount("/api/shop", routes=[Route("/items/", echo)]),
            Route("/api/big", big),
            Route("/admin/page", html),
            Route("/events/stream", events),
            WebSocketRoute("/ws/{path:path}", ws_echo),
            Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]
    )
