"""CanonicalPathMiddleware: the gateway's own check, run before routing (the web layer's
request context and body limit run around it): non-canonical paths are refused, HTTP and
WebSocket alike (paths.py says why)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from orderflow.services.gateway.paths import canonical_path
from orderflow.web.problems import ProblemError, send_problem


class CanonicalPathMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            try:
                canonical_path(scope.get("raw_path") or scope["path"].encode())
            except ProblemError as error:
                return await send_problem(scope, send, error)
        await self.app(scope, receive, send)
