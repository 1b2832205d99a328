"""`/ws`: the WebSocket endpoint. One subscription at a time per connection; a new subscribe
replaces the current one. Close codes: 1008 policy (bad identity, floods), 1009 too big, 1013
too slow (resume with the last event id), 1011 internal error."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from orderflow.domain.identity import Identity
from orderflow.observability import metrics
from orderflow.ports.identity import ASSERTION_HEADER, InvalidAssertionError
from orderflow.services.stream import protocol
from orderflow.services.stream.context import StreamContext
from orderflow.services.stream.opening import open_subscription
from orderflow.services.stream.protocol import BadMessageError, Ping, Subscribe
from orderflow.services.stream.subscription import TOO_SLOW, Subscription

log = structlog.get_logger("orderflow.stream.ws")
# Client messages allowed per window; a subscribe opens a database read, so floods are refused.
BURST, WINDOW = 20, 10.0
_REPLACED = "replaced"


class _Closing(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


async def websocket_endpoint(ws: WebSocket) -> None:
    ctx: StreamContext = ws.app.state.stream
    try:
        who = ctx.verifier.verify(ws.headers.get(ASSERTION_HEADER))
    except InvalidAssertionError:
        await ws.close(code=1008, reason="no valid identity assertion")
        return
    if not who.roles:
        await ws.close(code=1008, reason="sign in first")
        return
    await ws.accept()
    metrics.stream_connection("websocket", 1)
    try:
        await _Connection(ws, ctx, who).run()
    finally:
        metrics.stream_connection("websocket", -1)


class _Connection:
    def __init__(self, ws: WebSocket, ctx: StreamContext, who: Identity) -> None:
        self.ws, self.ctx, self.who = ws, ctx, who
        self.sub: Subscription | None = None
        self.changed = asyncio.Event()  # a new subscription for the writer to follow
        self.sending = asyncio.Lock()
        self.recent: list[float] = []

    async def run(self) -> None:
        tasks = {asyncio.create_task(self._read()), asyncio.create_task(self._write())}
        closing = _Closing(1000, "")
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if isinstance(exc, _Closing):
                    closing = exc
                elif exc is not None and not isinstance(exc, WebSocketDisconnect | OSError):
                    log.error("stream connection failed", error=repr(exc))
                    closing = _Closing(1011, "internal error")
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            if self.sub is not None:
                self.sub.close("disconnected")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(closing.code, closing.reason), 2.0)

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text") if message.get("text") is not None else message.get("bytes")
            self._count()
            try:
                request = protocol.parse_client_message(raw or "")
                if isinstance(request, Ping):
                    await self._send({"type": "pong"})
                else:
                    await self._subscribe(request)
            except BadMessageError as exc:
                if exc.code == "too_big":
                    raise _Closing(1009, exc.detail) from exc
                await self._send(protocol.error(exc.code, exc.detail))

    def _count(self) -> None:
        now = time.monotonic()
        self.recent = [t for t in self.recent if now - t < WINDOW]
        self.recent.append(now)
        if len(self.recent) > BURST:
            raise _Closing(1008, f"too many messages: at most {BURST} per {WINDOW:.0f} s")

    async def _subscribe(self, request: Subscribe) -> None:
        ctx = self.ctx
        opened = await open_subscription(ctx.storage, ctx.hub, self.who, request, ctx.limits)
        sub = opened.subscription
        async with self.sending:  # nothing live goes out before the catch-up
            if self.sub is not None:
                self.sub.close(_REPLACED)
            self.sub = sub
            if opened.resync is not None:
                await self._send_now(protocol.resync_required(opened.resync))
            for change, event_id in opened.missed:
                await self._send_now(protocol.status(change, event_id, sub.with_customer))
            await self._send_now(protocol.subscribed(request, sub.cursor.encode()))
        self.changed.set()

    async def _write(self) -> None:
        while True:
            sub = self.sub
            if sub is None or sub.closed == _REPLACED:
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), self.ctx.heartbeat)
                if self.sub is sub:
                    await self._send(_heartbeat())
                continue
            changes = await sub.take(self.ctx.heartbeat)
            if sub.closed == TOO_SLOW:
                raise _Closing(1013, "too_slow: reconnect with your last event id")
            if sub.closed is not None:
                continue
            if not changes:
                await self._send(_heartbeat())
            for change in changes:
                event_id = sub.accept(change)
                if event_id is not None:
                    await self._send(protocol.status(change, event_id, sub.with_customer))

    async def _send(self, message: dict[str, Any]) -> None:
        async with self.sending:
            await self._send_now(message)

    async def _send_now(self, message: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(
                self.ws.send_text(protocol.encode(message)), self.ctx.send_timeout
            )
        except TimeoutError as exc:
            raise _Closing(1013, "too_slow: reconnect with your last event id") from exc


def _heartbeat() -> dict[str, Any]:
    return {"type": "heartbeat", "at": time.time()}
