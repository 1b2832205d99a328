"""RFC 9457 problem details: every error the API returns is application/problem+json."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = structlog.get_logger()

MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


class ProblemError(StarletteHTTPException):
    """An error answered as a problem. It is an HTTPException so that FastAPI, which turns any
    other exception raised while it reads the body into a bare 400, lets it through unchanged."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, detail or title, headers)
        self.status, self.title, self.problem_detail = status, title, detail


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    return Response(orjson.dumps(body), status, headers=headers, media_type=MEDIA_TYPE)


def _clean(error: dict[str, Any]) -> dict[str, Any]:
    # `input` can echo a whole oversized body and `ctx` may hold exceptions: keep what explains.
    return {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [_clean(e) for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(400, "Malformed JSON", "the request body is not valid JSON", errors)
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
    return problem_response(422, "Invalid request", detail, errors)


async def _problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status, exc.title, exc.problem_detail, headers=headers)


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status_code, str(exc.detail), headers=headers)


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error", error=repr(exc))
    return problem_response(500, "Internal error", "the server failed; the request was not applied")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ProblemError, _problem)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid identity",
    404: "Not found (or not yours)",
    409: "Conflicts with the resource's state",
    413: "Body too large",
    422: "Invalid request",
    503: "Overloaded: retry after the Retry-After header's seconds",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route can give."""
    return {
        code: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": _DESCRIPTIONS[code]}
        for code in codes
    }


PROBLEM_RESPONSES = documented(400, 401, 413, 422)
