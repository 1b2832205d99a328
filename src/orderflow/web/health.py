"""Liveness and readiness of an HTTP service, for supervisors and load balancers.

`GET /healthz` answers 200 while the event loop runs (liveness: restart me if this fails).
`GET /readyz` runs the named checks (each an async callable that raises when its dependency is
not usable) concurrently, each within `timeout` seconds: 200 `{"status": "ready", <name>: "ok"}`
when all pass (plus whatever `details` adds, e.g. a count), else 503 problem+json naming the
failed checks only. What went wrong is logged, never answered: an exception's text may hold a URL
with a password or an internal address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import orjson
import structlog
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderflow.web.problems import ProblemError, documented, problem_response

log = structlog.get_logger("orderflow.web.health")

Check = Callable[[], Awaitable[object]]
Details = Callable[[], Mapping[str, object]]
CHECK_TIMEOUT = 3.0
_ALIVE = orjson.dumps({"status": "ok"})


class Readiness:
    def __init__(
        self,
        component: str,
        checks: Mapping[str, Check],
        timeout: float = CHECK_TIMEOUT,
        details: Details | None = None,
    ) -> None:
        self.component = component  # named in the 503's detail: "gateway database unreachable"
        self.checks = dict(checks)
        self.timeout = timeout
        self.details = details

    async def failed(self) -> list[str]:
        """The names of the checks that failed or did not answer in time."""
        names = list(self.checks)
        passed = await asyncio.gather(*(self._passes(name) for name in names))
        return [name for name, ok in zip(names, passed, strict=True) if not ok]

    async def _passes(self, name: str) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                await self.checks[name]()
        except Exception as exc:
            log.warning(
                "readiness check failed", component=self.component, check=name, error=repr(exc)
            )
            return False
        return True

    async def healthz(self, request: Request) -> Response:
        return Response(_ALIVE, media_type="application/json")

    async def readyz(self, request: Request) -> Response:
        failed = await self.failed()
        if failed:
            detail = "; ".join(f"{self.component} {name} unreachable" for name in failed)
            return problem_response(ProblemError(503, detail=detail, failed=failed))
        body: dict[str, object] = {"status": "ready", **dict.fromkeys(self.checks, "ok")}
        if self.details is not None:
            body.update(self.details())
        return Response(orjson.dumps(body), media_type="application/json")

    def routes(self) -> list[Route]:
        """For a Starlette app."""
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
        ]

    def router(self) -> APIRouter:
        """For a FastAPI app: the same endpoints, in its OpenAPI document."""
        router = APIRouter(tags=["health"])
        router.add_api_route("/healthz", self.healthz, methods=["GET"])
        router.add_api_route(
            "/readyz",
            self.readyz,
            methods=["GET"],
            responses={503: {**documented(503)[503], "description": "A dependency is unusable"}},
        )
        return router
