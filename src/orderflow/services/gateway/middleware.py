"""CanonicalRequestMiddleware: the gateway's own checks, run before routing (the web layer's
request context and body limit run around it), HTTP and WebSocket alike:
- non-canonical paths are refused (paths.py says why);
- a request needs exactly one well-formed Host (RFC 9110 7.2: 400 for none on HTTP/1.1, for
  two, or for an invalid one). With two, the gateway and an upstream or a cache in between
  could each pick a different one; httptools lets them through, so the check is here.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from orderflow.services.gateway.paths import canonical_path
from orderflow.web.problems import ProblemError, bad_request, send_problem

# RFC 3986 host (an IP literal in brackets, or a reg-name) and an optional port.
_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(:[0-9]{1,5})?")


class CanonicalRequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            try:
                canonical_path(scope.get("raw_path") or scope["path"].encode())
                _check_host(scope)
            except ProblemError as error:
                return await send_problem(scope, send, error)
        await self.app(scope, receive, send)


def _check_host(scope: Scope) -> None:
    hosts = [value for name, value in scope["headers"] if name == b"host"]
    if len(hosts) > 1:
        raise bad_request("send one Host header", reason="bad_host")
    if not hosts:
        if scope.get("http_version") == "1.1":  # (1.0 may omit it; HTTP/2 has :authority)
            raise bad_request("the Host header is missing", reason="bad_host")
    elif not _HOST.fullmatch(hosts[0]):
        raise bad_request("the Host header is not a valid host", reason="bad_host")
