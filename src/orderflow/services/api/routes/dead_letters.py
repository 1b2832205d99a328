"""/api/v1/admin/dead-letters: list, inspect, replay and discard dead letters (admins only).

A dead letter's path is `<group>/<position>`. Replaying or discarding one that is gone (done
already) is 404, so a repeated command never delivers twice.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from orderflow.domain.errors import OrderNotResumableError
from orderflow.services.api.deps import PROBLEM_RESPONSES, AdminIdentity, Context
from orderflow.services.api.schemas import DeadLetterDetailOut, DeadLetterPage, ReplayOut
from orderflow.services.orders.recovery import (
    BadCursorError,
    Cursor,
    DeadLetterNotFoundError,
    DeadLetters,
)
from orderflow.web.problems import ProblemError, documented

log = structlog.get_logger()
router = APIRouter(prefix="/api/v1/admin/dead-letters", tags=["admin: dead letters"])

_RESPONSES = {**PROBLEM_RESPONSES, **documented(403, 404, 503)}
Group = Annotated[str, Path(min_length=1, max_length=64)]
Position = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


async def _tools(ctx: Context) -> DeadLetters:
    try:
        tools = await ctx.connected_dead_letters()
    except (ConnectionError, OSError, TimeoutError) as exc:
        log.error("broker unreachable for the dead-letter tools", error=str(exc))
        raise ProblemError(503, "Service Unavailable", "the broker cannot be reached") from exc
    if tools is None:
        raise ProblemError(503, "Service Unavailable", "this API has no broker configured")
    return tools


def _not_found(exc: DeadLetterNotFoundError) -> ProblemError:
    return ProblemError(404, "Not Found", f"no dead letter {exc}")


def _encode_cursor(cursor: Cursor) -> str:
    raw = orjson.dumps([cursor.group, cursor.position])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str) -> Cursor:
    try:
        group, position = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(group, str) or not isinstance(position, int) or position < 0:
            raise ValueError("not a dead-letter cursor")
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ProblemError(400, "Bad cursor", "the cursor is not one this API gave out") from exc
    return Cursor(group, position)


@router.get("", response_model=DeadLetterPage, responses=_RESPONSES)
async def list_dead_letters(
    ctx: Context,
    who: AdminIdentity,
    group: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    tools = await _tools(ctx)
    after = _decode_cursor(cursor) if cursor else None
    try:
        views, following = await tools.page(group, after, limit)
    except DeadLetterNotFoundError as exc:
        raise _not_found(exc) from exc
    except BadCursorError as exc:
        raise ProblemError(400, "Bad cursor", "the cursor is not one of this listing") from exc
    return _json(
        {
            "items": [v.summary() for v in views],
            "next_cursor": None if following is None else _encode_cursor(following),
        }
    )


@router.get("/{group}/{position}", response_model=DeadLetterDetailOut, responses=_RESPONSES)
async def show_dead_letter(
    group: Group, position: Position, ctx: Context, who: AdminIdentity
) -> Response:
    tools = await _tools(ctx)
    try:
        return _json((await tools.show(group, position)).as_json())
    except DeadLetterNotFoundError as exc:
        raise _not_found(exc) from exc


@router.post(
    "/{group}/{position}/replay",
    response_model=ReplayOut,
    responses={**_RESPONSES, **documented(409)},
    summary="Deliver it to its group again (resuming or restarting its failed order)",
)
async def replay_dead_letter(
    group: Group, position: Position, ctx: Context, who: AdminIdentity
) -> Response:
    tools = await _tools(ctx)
    try:
        outcome = await tools.replay(group, position, actor=f"admin:{who.subject}")
    except DeadLetterNotFoundError as exc:
        raise _not_found(exc) from exc
    except OrderNotResumableError as exc:
        raise ProblemError(409, "Order cannot be resumed", str(exc)) from exc
    return _json({"id": f"{group}/{position}", "outcome": outcome})


@router.delete(
    "/{group}/{position}",
    status_code=204,
    responses=_RESPONSES,
    summary="Discard it for good",
)
async def discard_dead_letter(
    group: Group, position: Position, ctx: Context, who: AdminIdentity
) -> Response:
    tools = await _tools(ctx)
    try:
        await tools.discard(group, position, actor=f"admin:{who.subject}")
    except DeadLetterNotFoundError as exc:
        raise _not_found(exc) from exc
    return Response(status_code=204)
