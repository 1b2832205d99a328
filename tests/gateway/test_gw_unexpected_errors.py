"""An unexpected error in either service (the order API, the gateway: both use the shared web
layer) answers 500 problem+json that still carries X-Request-Id (and the security headers), so a
client can quote the id that finds the logged error; the error is logged once, as data."""

from __future__ import annotations

import logging

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from structlog.testing import capture_logs

from orderflow.web import problems
from orderflow.web.request_context import RequestContextMiddleware
from tests.gateway.gateway_harness import serve


async def fails(request: Request) -> Response:
    raise RuntimeError("boom")


def app() -> Starlette:
    """Composed as both services compose it: the request context is the outermost middleware
    of the app's own (inside Starlette's error handling)."""
    made = Starlette(
        routes=[Route("/fail", fails)], middleware=[Middleware(RequestContextMiddleware)]
    )
    problems.install(made)
    return made


async def test_a_500_carries_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    structlog.contextvars.clear_contextvars()
    with (
        capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs,
        caplog.at_level(logging.ERROR),
    ):
        async with serve(app()) as url, httpx.AsyncClient(base_url=url) as http:
            response = await http.get("/fail", headers={"X-Request-Id": "client-req-500500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 500
    assert "boom" not in response.text
    assert response.headers["x-request-id"] == "client-req-500500"
    assert response.headers["x-content-type-options"] == "nosniff"
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["unhandled error"]
    assert errors[0]["request_id"] == "client-req-500500"
    # Not logged a second time by Starlette or uvicorn ("Exception in ASGI application").
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
