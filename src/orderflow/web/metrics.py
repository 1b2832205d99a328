"""/metrics for an HTTP service, and the route template a request is counted under.

Requests are counted by the template of the route that matched (`/v1/orders/{order_id}`), never
the raw path, so the number of series stays bounded whatever clients send; a request no route
matched is counted as `unmatched`.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderflow.observability import metrics
from orderflow.observability.exposition import CONTENT_TYPE, render

UNMATCHED = "unmatched"


def route_template(scope: Scope, app_root: str = "") -> str:
    """The matched route's path template, with the prefix of any mount it sits under."""
    route = scope.get("route")
    mounted = str(scope.get("root_path", ""))[len(app_root) :]
    if isinstance(route, Mount):  # the mount matched, nothing inside it did
        return f"{mounted}/{UNMATCHED}"
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    return mounted + template


async def metrics_endpoint(_: Request) -> Response:
    return Response(await render(), media_type=CONTENT_TYPE)


def metrics_route() -> Route:
    """For a service's internal port (Prometheus scrapes it without credentials)."""
    return Route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)


class HttpMetricsMiddleware:
    """Counts requests by route template, for an app without RequestContextMiddleware (which
    counts them itself): the stream service. A WebSocket or SSE request is counted when it ends,
    with the connection's whole duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        app_root = str(scope.get("root_path", ""))
        status = 0

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
            elif message["type"] == "websocket.accept":
                status = 101
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope, app_root)
            metrics.http_request(route, scope.get("method", "WS"), status, seconds)
