"""Every error the gateway answers is RFC 9457 problem+json; this module is the one way to make one.

GatewayError                  raised anywhere below the app, turned into a problem response
├── status 4xx                the client's fault (bad credentials, path, body, rate limit)
└── status 502/504            the upstream could not be reached / did not answer in time
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Scope, Send

PROBLEM_JSON = "application/problem+json"


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


def problem_body(status: int, title: str, detail: str, **extra: Any) -> bytes:
    return orjson.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    )


def problem_response(error: GatewayError) -> Response:
    return Response(
        problem_body(error.status, error.title, error.detail, **error.extra),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=error.headers,
    )


async def send_problem(scope: Scope, send: Send, error: GatewayError) -> None:
    """Answer with a problem before any app has run; a WebSocket handshake is refused with it
    (or, on a server without the denial-response extension, closed with policy violation)."""
    body = problem_body(error.status, error.title, error.detail, **error.extra)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
    ]
    prefix = "http"
    if scope["type"] == "websocket":
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008, "reason": error.detail[:120]})
            return
        prefix = "websocket.http"
    await send({"type": f"{prefix}.response.start", "status": error.status, "headers": headers})
    await send({"type": f"{prefix}.response.body", "body": body})


def unauthorized(detail: str) -> GatewayError:
    return GatewayError(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="orderflow"'}
    )


def forbidden(detail: str) -> GatewayError:
    return GatewayError(403, "Forbidden", detail)


def bad_request(detail: str, **extra: Any) -> GatewayError:
    return GatewayError(400, "Bad Request", detail, **extra)


def not_found(detail: str = "no such resource") -> GatewayError:
    return GatewayError(404, "Not Found", detail)
