"""`/events`: the same stream as Server-Sent Events, for clients without WebSockets.

`GET /events?scope=mine|all|order&order_id=...`; the browser's EventSource resends the last `id:`
it saw as `Last-Event-ID` when it reconnects (a `last_event_id` query parameter does the same for
a first connection). Events: `status`, `resync_required`, `subscribed`, `error`; a comment line
every heartbeat keeps proxies and the client's dead-connection check content.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from orderflow.observability import metrics
from orderflow.ports.identity import ASSERTION_HEADER, InvalidAssertionError
from orderflow.services.stream import protocol
from orderflow.services.stream.context import StreamContext
from orderflow.services.stream.opening import Opened, open_subscription
from orderflow.services.stream.protocol import BadMessageError, Subscribe
from orderflow.services.stream.subscription import TOO_SLOW

_STATUS = {"forbidden": 403, "not_found": 404}
RETRY_MS = 2000  # how soon EventSource reconnects after the stream ends


async def events_endpoint(request: Request) -> Response:
    ctx: StreamContext = request.app.state.stream
    try:
        who = ctx.verifier.verify(request.headers.get(ASSERTION_HEADER))
    except InvalidAssertionError as exc:
        return _problem(401, "Unauthorized", str(exc))
    if not who.roles:
        return _problem(401, "Unauthorized", "sign in first")
    fields: dict[str, Any] = {
        k: v for k, v in request.query_params.items() if k in ("scope", "order_id")
    }
    fields["last_event_id"] = request.headers.get("last-event-id") or request.query_params.get(
        "last_event_id"
    )
    try:
        wanted = protocol.subscribe_from(fields)
        opened = await open_subscription(ctx.storage, ctx.hub, who, wanted, ctx.limits)
    except BadMessageError as exc:
        return _problem(_STATUS.get(exc.code, 400), "Bad Request", exc.detail, exc.code)
    return StreamingResponse(
        _stream(ctx, wanted, opened),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(ctx: StreamContext, wanted: Subscribe, opened: Opened) -> AsyncIterator[str]:
    sub = opened.subscription
    metrics.stream_connection("sse", 1)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        if opened.resync is not None:
            yield _event("resync_required", protocol.resync_required(opened.resync))
        for change, event_id in opened.missed:
            yield _event("status", protocol.status(change, event_id, sub.with_customer), event_id)
        at = sub.cursor.encode()
        yield _event("subscribed", protocol.subscribed(wanted, at), at)
        while True:
            changes = await sub.take(ctx.heartbeat)
            if sub.closed is not None:
                if sub.closed == TOO_SLOW:
                    detail = "too slow: reconnect with your last event id"
                    yield _event("error", protocol.error(TOO_SLOW, detail))
                return
            if not changes:
                yield ": heartbeat\n\n"
            for change in changes:
                sent_as = sub.accept(change)
                if sent_as is not None:
                    message = protocol.status(change, sent_as, sub.with_customer)
                    yield _event("status", message, sent_as)
    finally:
        sub.close("disconnected")
        metrics.stream_connection("sse", -1)


def _event(name: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id else "")
    return f"{head}data: {protocol.encode(data)}\n\n"


def _problem(status: int, title: str, detail: str, code: str | None = None) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if code:
        body["code"] = code
    return JSONResponse(body, status_code=status, media_type="application/problem+json")
