"""RequestContextMiddleware: the outermost layer of the order API and of the gateway.

In one pass (it is on the gateway's hot path, so one wrapper rather than four):
- the request id: the client's X-Request-Id when well formed, else a new one; sent back as
  X-Request-Id, kept in the scope (`REQUEST_ID_KEY`) for whoever forwards the request, and bound
  into structlog's contextvars, so every line logged while the request is handled carries it (a
  request can be followed from the gateway into the API);
- the client's address (`CLIENT_IP_KEY`): the peer, or with `trust_forwarded_for` the last
  X-Forwarded-For entry (the one our own trusted proxy appended);
- the security headers of every response (security_headers.py);
- an unexpected error that escaped the app: logged once here, with the request id, and answered
  500 problem+json carrying X-Request-Id and the security headers (Starlette's own error
  handling sits outside this middleware, so its 500 had neither, and the server logged the
  error a second time);
- a client that went away mid-request (Starlette's ClientDisconnect, raised while the body is
  read): nothing is broken and nobody is left to answer, so one info line, no traceback, and
  499 in the access log (nginx's "client closed request");
- one access-log line per request, and its count and duration in the process's metrics (by
  route template: web/metrics.py).
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderflow.observability import metrics
from orderflow.web.metrics import route_template
from orderflow.web.problems import UNEXPECTED_DETAIL, ProblemError, send_problem
from orderflow.web.security_headers import SecurityHeaders

log = structlog.get_logger("orderflow.web.access")

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_KEY = "orderflow.request_id"
CLIENT_IP_KEY = "orderflow.client_ip"
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{8,128}$")
_STARTS = ("http.response.start", "websocket.http.response.start")
CLIENT_CLOSED = 499


def request_id_of(scope: Scope) -> str:
    return str(scope.get(REQUEST_ID_KEY, ""))


def client_ip_of(scope: Scope) -> str:
    return str(scope.get(CLIENT_IP_KEY, ""))


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        security: SecurityHeaders | None = None,
        trust_forwarded_for: bool = False,
    ) -> None:
        self.app = app
        self.security = security or SecurityHeaders()
        self.trust_forwarded_for = trust_forwarded_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        app_root = str(scope.get("root_path", ""))
        given = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), b"")
        request_id = given.decode() if _REQUEST_ID.match(given) else uuid.uuid4().hex
        client = self._client_ip(scope)
        scope[REQUEST_ID_KEY] = request_id
        scope[CLIENT_IP_KEY] = client
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] in _STARTS:
                status = message["status"]
                headers = [
                    (n, v) for n, v in message.get("headers", []) if n.lower() != REQUEST_ID_HEADER
                ]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = self.security.add_to(headers)
            elif message["type"] == "websocket.accept":
                status = 101
            await send(message)

        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            log.info("client disconnected", request_id=request_id)
            status = status or CLIENT_CLOSED
        except Exception as exc:
            if status:  # the answer had begun: nothing more can be said to the client
                raise
            log.exception("unhandled error", error=type(exc).__name__)
            await send_problem(
                scope, send_with_headers, ProblemError(500, detail=UNEXPECTED_DETAIL)
            )
        finally:
            elapsed = time.perf_counter() - started
            method = scope.get("method", "WS")
            metrics.http_request(route_template(scope, app_root), method, status, elapsed)
            log.info(
                "request",
                request_id=request_id,
                method=method,
                path=scope["path"],
                status=status,
                client=client,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.reset_contextvars(**bound)

    def _client_ip(self, scope: Scope) -> str:
        if self.trust_forwarded_for:
            forwarded: list[bytes] = [v for k, v in scope["headers"] if k == b"x-forwarded-for"]
            if forwarded:
                return forwarded[-1].decode("latin-1").split(",")[-1].strip()
        client = scope.get("client")
        return str(client[0]) if client else "unknown"
