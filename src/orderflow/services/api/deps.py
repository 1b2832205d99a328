"""Annotated dependencies shared by the routers.

All async: FastAPI runs plain `def` dependencies on a thread pool, a cost on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from orderflow.domain.identity import Identity
from orderflow.ports.identity import ASSERTION_HEADER, InvalidAssertionError
from orderflow.services.api.context import ApiContext
from orderflow.web.problems import ProblemError, documented

_assertion = APIKeyHeader(
    name=ASSERTION_HEADER,
    auto_error=False,
    description="Identity assertion signed by the gateway (the gateway adds it; clients cannot).",
)


async def _context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Context = Annotated[ApiContext, Depends(_context)]


async def _identity(ctx: Context, token: Annotated[str | None, Security(_assertion)]) -> Identity:
    try:
        identity = ctx.verifier.verify(token)
    except InvalidAssertionError as exc:
        raise ProblemError(401, "Unauthorized", str(exc)) from exc
    if not identity.roles and not identity.scopes:
        # The gateway vouches for anonymous callers on public routes; orders need a signed-in one.
        raise ProblemError(401, "Unauthorized", "the identity assertion names no signed-in caller")
    return identity


CurrentIdentity = Annotated[Identity, Depends(_identity)]


async def _admin(who: CurrentIdentity) -> Identity:
    if not who.is_admin:
        raise ProblemError(403, "Forbidden", "this route is for administrators")
    return who


AdminIdentity = Annotated[Identity, Depends(_admin)]

# The problems any route with a body and an identity can answer (OpenAPI).
PROBLEM_RESPONSES = documented(400, 401, 413, 422)
