"""Liveness and readiness for supervisors and load balancers (no identity needed)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from orderflow.services.api.deps import Context
from orderflow.services.api.problems import problem_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", responses={503: {"description": "A dependency is unreachable"}})
async def readyz(ctx: Context) -> Response:
    try:
        await ctx.db.ping()
    except Exception as exc:
        return problem_response(503, "Not ready", f"database unreachable: {exc!r}")
    return JSONResponse({"status": "ready", "database": "ok"})
