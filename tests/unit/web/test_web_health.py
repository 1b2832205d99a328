"""/readyz names the checks that failed and nothing else: an exception's text may hold a URL with
a password or an internal address, so it is logged, never answered."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from starlette.applications import Starlette
from structlog.testing import capture_logs

from orderflow.web.health import Readiness

LEAK = "postgresql://gateway:s3cret@10.1.2.3:5432/gw"


async def ok() -> None:
    return None


async def refused() -> None:
    raise OSError(f"could not connect to {LEAK}")


async def hangs() -> None:
    await asyncio.sleep(10)


def client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_ready_when_every_check_passes() -> None:
    readiness = Readiness("gateway", {"database": ok, "broker": ok})
    app = Starlette(routes=readiness.routes())
    async with client(app) as http:
        alive, ready = await http.get("/healthz"), await http.get("/readyz")
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "database": "ok", "broker": "ok"},
    )


async def test_503_names_only_the_failed_checks() -> None:
    readiness = Readiness(
        "gateway", {"database": refused, "cache": hangs, "broker": ok}, timeout=0.2
    )
    app = FastAPI()
    app.include_router(readiness.router())
    async with client(app) as http:
        with capture_logs() as logs:
            response = await http.get("/readyz")
        alive = await http.get("/healthz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Service Unavailable"
    assert problem["failed"] == ["database", "cache"]
    assert problem["detail"] == "gateway database unreachable; gateway cache unreachable"
    assert "s3cret" not in response.text
    assert "10.1.2.3" not in response.text
    assert "OSError" not in response.text
    assert alive.status_code == 200  # alive, just not ready
    # What went wrong is in the log, for the operator.
    failures = {e["check"]: e["error"] for e in logs if e["event"] == "readiness check failed"}
    assert LEAK in failures["database"]
    assert "TimeoutError" in failures["cache"]
