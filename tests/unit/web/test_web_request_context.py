"""The request context both apps share: X-Request-Id in and out, bound into structlog's context
for every line logged while the request is handled, one access-log line, security headers."""

from __future__ import annotations

import httpx
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from structlog.testing import capture_logs

from orderflow.web import problems
from orderflow.web.body_limit import BodyLimitMiddleware
from orderflow.web.request_context import RequestContextMiddleware, request_id_of
from orderflow.web.security_headers import SecurityHeaders


async def handler(request: Request) -> Response:
    structlog.get_logger().info("inside", seen=request_id_of(request.scope))
    if request.url.path == "/page":
        return HTMLResponse("<p>hi</p>")
    return JSONResponse({"body_length": len(await request.body())})


def app(security: SecurityHeaders | None = None, max_bytes: int = 1024) -> Starlette:
    inner = Starlette(routes=[Route("/{p:path}", handler, methods=["GET", "POST"])])
    problems.install(inner)
    limited = BodyLimitMiddleware(inner, max_bytes=max_bytes)
    return RequestContextMiddleware(limited, security=security)  # type: ignore[return-value]


def client(asgi: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_request_id_in_out_and_in_every_log_line() -> None:
    structlog.contextvars.clear_contextvars()
    async with client(app()) as http:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            kept = await http.get("/x", headers={"X-Request-Id": "client-req-12345"})
            replaced = await http.get("/x", headers={"X-Request-Id": "bad id"})
    assert kept.headers["x-request-id"] == "client-req-12345"
    new_id = replaced.headers["x-request-id"]
    assert len(new_id) == 32
    inside = [e for e in logs if e["event"] == "inside"]
    assert [(e["request_id"], e["seen"]) for e in inside] == [
        ("client-req-12345", "client-req-12345"),
        (new_id, new_id),
    ]
    access = [e for e in logs if e["event"] == "request"]
    assert [(e["request_id"], e["status"], e["method"]) for e in access] == [
        ("client-req-12345", 200, "GET"),
        (new_id, 200, "GET"),
    ]
    # Unbound again after the request.
    assert "request_id" not in structlog.contextvars.get_contextvars()


async def test_security_headers() -> None:
    async with client(app(SecurityHeaders(hsts=True))) as http:
        page, data = await http.get("/page"), await http.get("/data")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["strict-transport-security"].startswith("max-age=")
    assert data.headers["x-content-type-options"] == "nosniff"
    assert "x-frame-options" not in data.headers
    async with client(app(SecurityHeaders(csp=None))) as http:
        docs = await http.get("/page")
    assert "content-security-policy" not in docs.headers
    assert "strict-transport-security" not in docs.headers
    assert docs.headers["x-frame-options"] == "DENY"


async def test_body_limit_declared_and_streamed() -> None:
    async with client(app(max_bytes=1024)) as http:
        fits = await http.post("/x", content=b"x" * 1024)
        declared = await http.post("/x", content=b"x" * 1025)

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(4):
                yield b"y" * 512

        streamed = await http.post("/x", content=chunks())
    assert fits.json() == {"body_length": 1024}
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Content Too Large"
        assert response.json()["reason"] == "body_too_large"
        assert "1024" in response.json()["detail"]
        assert response.headers["x-request-id"]
