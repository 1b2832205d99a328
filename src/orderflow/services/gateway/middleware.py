"""Pure ASGI middleware run before anything else: request context and the request's shape.

RequestContextMiddleware  request id (kept if well formed, else new), client IP, access log,
                          X-Request-Id and security headers on the way out
RequestShapeMiddleware    canonical paths only, request bodies up to the size limit
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderflow.services.gateway.paths import canonical_path
from orderflow.services.gateway.problems import GatewayError, send_problem
from orderflow.services.gateway.upstream_headers import CLIENT_IP_KEY, REQUEST_ID_KEY
from orderflow.web.body_limit import call_with_body_limit

log = structlog.get_logger("orderflow.gateway.access")
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{8,128}$")
_ALWAYS = [(b"x-content-type-options", b"nosniff")]
_HTML = [
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_CSP = (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'")
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, trust_forwarded_for: bool, hsts: bool) -> None:
        self.app = app
        self.trust_forwarded_for = trust_forwarded_for
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = given.decode() if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope[REQUEST_ID_KEY] = request_id
        scope[CLIENT_IP_KEY] = self._client_ip(scope)
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
                message["headers"] = self._headers(list(message.get("headers", [])), request_id)
            elif message["type"] == "websocket.accept":
                status = 101
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            log.info(
                "request",
                request_id=request_id,
                method=scope.get("method", "WS"),
                path=scope["path"],
                status=status,
                client=scope[CLIENT_IP_KEY],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    def _headers(
        self, headers: list[tuple[bytes, bytes]], request_id: str
    ) -> list[tuple[bytes, bytes]]:
        present = {name.lower() for name, _ in headers}
        headers = [(n, v) for n, v in headers if n.lower() != b"x-request-id"]
        headers.append((b"x-request-id", request_id.encode()))
        extra = list(_ALWAYS)
        content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
        if content_type.startswith(b"text/html"):
            extra += _HTML
            extra.append(_CSP)
        if self.hsts:
            extra.append(_HSTS)
        # An upstream's own stricter policy (say a CSP with hashes) is kept as it is.
        headers += [(n, v) for n, v in extra if n not in present]
        return headers

    def _client_ip(self, scope: Scope) -> str:
        if self.trust_forwarded_for:
            forwarded: list[bytes] = [v for k, v in scope["headers"] if k == b"x-forwarded-for"]
            if forwarded:
                # The rightmost entry is the one our own trusted proxy appended.
                return forwarded[-1].decode("latin-1").split(",")[-1].strip()
        client = scope.get("client")
        return str(client[0]) if client else "unknown"


class BodyTooLargeError(Exception):
    pass


class RequestShapeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        try:
            canonical_path(scope.get("raw_path") or scope["path"].encode())
            if scope["type"] == "http":
                self._check_declared_length(scope)
        except GatewayError as error:
            return await send_problem(scope, send, error)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        await call_with_body_limit(
            self.app,
            scope,
            receive,
            send,
            max_bytes=self.max_body_bytes,
            error=BodyTooLargeError(),
            answer_too_large=lambda: send_problem(scope, send, self._too_large()),
        )

    def _check_declared_length(self, scope: Scope) -> None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    raise GatewayError(400, "Bad Request", "invalid Content-Length")
                if int(value) > self.max_body_bytes:
                    raise self._too_large()

    def _too_large(self) -> GatewayError:
        return GatewayError(
            413,
            "Content Too Large",
            f"request body exceeds {self.max_body_bytes} bytes",
            reason="body_too_large",
        )
