"""Streaming body limit for ASGI apps (the order API and the gateway both use it).

A declared Content-Length over the limit is each app's own quick refusal; this catches the rest:
a chunked body that keeps growing is cut off as soon as it passes the limit, before it is read
into memory, and answered 413 unless a response has already started.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def call_with_body_limit(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    max_bytes: int,
    error: Exception,
    answer_too_large: Callable[[], Awaitable[None]],
) -> None:
    """Run `app`; `error` is raised from receive() once the body passes `max_bytes` (the app may
    need a particular type to let it through), and `answer_too_large` sends the 413."""
    received = 0
    started = False

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise error
        return message

    async def tracking_send(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, limited_receive, tracking_send)
    except type(error):
        if not started:
            await answer_too_large()
