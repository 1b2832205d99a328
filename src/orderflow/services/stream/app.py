"""create_stream_app: the stream service as an ASGI application (`orderflow serve stream`).

The broker feed runs in the app's lifespan: it joins the broker (waiting for one that is not up
yet), then forwards every status change to the hub until shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from orderflow.services.runtime.retrying import retry_until_stopped
from orderflow.services.stream.context import StreamContext
from orderflow.services.stream.sse import events_endpoint
from orderflow.services.stream.websocket import websocket_endpoint
from orderflow.web.health import Readiness
from orderflow.web.metrics import HttpMetricsMiddleware, metrics_route

log = structlog.get_logger("orderflow.stream")


def create_stream_app(ctx: StreamContext, extra: Sequence[BaseRoute] = ()) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        feed = asyncio.create_task(_feed(ctx, stop))
        try:
            yield
        finally:
            stop.set()
            for sub in list(ctx.hub.subscriptions()):
                sub.close("shutting_down")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(feed, 5.0)
            await ctx.broker.close()
            await ctx.storage.dispose()

    app = Starlette(
        routes=[
            WebSocketRoute("/ws", websocket_endpoint),
            Route("/events", events_endpoint, methods=["GET"]),
            *_readiness(ctx).routes(),
            metrics_route(),  # the internal port; the gateway routes only /ws and /events here
            *extra,
        ],
        middleware=[Middleware(HttpMetricsMiddleware)],
        lifespan=lifespan,
    )
    app.state.stream = ctx
    return app


async def _feed(ctx: StreamContext, stop: asyncio.Event) -> None:
    """Connect and run the feed, starting again after an outage with backoff."""

    async def connect_and_run() -> None:
        try:
            await ctx.broker.connect()
            await ctx.feed.run(stop)
        except Exception:
            ctx.feed.ready.clear()
            raise

    await retry_until_stopped(connect_and_run, stop, event="status feed failed; restarting")


def _readiness(ctx: StreamContext) -> Readiness:
    """/healthz and /readyz as the API and the gateway answer them (a 503 is problem+json naming
    the failed checks); ready also tells how many subscriptions this process holds."""

    async def broker() -> None:
        if not ctx.feed.ready.is_set():  # not yet joined: changes would not reach the hub
            raise ConnectionError("the status feed has not joined the broker")

    return Readiness(
        "stream",
        {"database": ctx.storage.ping, "broker": broker},
        details=lambda: {"subscriptions": len(ctx.hub)},
    )
