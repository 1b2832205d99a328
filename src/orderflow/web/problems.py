"""RFC 9457 problem details: every error the order API and the gateway answer is one of these.

ProblemError(status, title=None, detail=None, headers=None, **extra)
    raised anywhere below an app and answered as `application/problem+json`. The title is the
    status's reason phrase (RFC 9110's wording) unless a specific one is given, say "Bad cursor";
    `extra` members (a machine-readable `reason`, validation `errors`) go into the body as given.
    It is a Starlette HTTPException, so FastAPI, which turns any other exception raised while it
    reads a body into a bare 400, lets it through unchanged.
install(app)
    the exception handlers of an app (FastAPI or Starlette): ProblemError and every other
    HTTPException; request validation (422 naming each field's location and what is wrong with
    it, never the value sent: it may be a password; malformed JSON 400); anything unexpected
    (500, logged, no internals in the answer).
send_problem(scope, send, error)
    answer before any app has run (middleware, a refused WebSocket handshake).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
import structlog
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope, Send

log = structlog.get_logger("orderflow.web")

MEDIA_TYPE = "application/problem+json"
# RFC 9110's names where Python before 3.13 still has RFC 7231's.
_RFC9110 = {413: "Content Too Large", 416: "Range Not Satisfiable", 422: "Unprocessable Content"}


def reason_phrase(status: int) -> str:
    try:
        return _RFC9110.get(status) or HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ProblemError(HTTPException):
    headers: dict[str, str]  # always a dict here: callers add to it

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.title = title or reason_phrase(status)
        super().__init__(status, detail or self.title, dict(headers or {}))
        self.status = status
        self.problem_detail = detail
        self.extra = extra


class Problem(BaseModel):
    """The body, for OpenAPI documents (responses are built without it)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_body(error: ProblemError) -> bytes:
    body: dict[str, Any] = {"type": "about:blank", "title": error.title, "status": error.status}
    if error.problem_detail is not None:
        body["detail"] = error.problem_detail
    body.update(error.extra)
    return orjson.dumps(body)


def problem_response(error: ProblemError) -> Response:
    return Response(
        problem_body(error), error.status, headers=error.headers or None, media_type=MEDIA_TYPE
    )


async def send_problem(scope: Scope, send: Send, error: ProblemError) -> None:
    """Answer with a problem before any app has run; a WebSocket handshake is refused with it
    (or, on a server without the denial-response extension, closed with policy violation)."""
    body = problem_body(error)
    headers = [
        (b"content-type", MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()),
    ]
    prefix = "http"
    if scope["type"] == "websocket":
        if "websocket.http.response" not in scope.get("extensions", {}):
            reason = (error.problem_detail or error.title)[:120]
            await send({"type": "websocket.close", "code": 1008, "reason": reason})
            return
        prefix = "websocket.http"
    await send({"type": f"{prefix}.response.start", "status": error.status, "headers": headers})
    await send({"type": f"{prefix}.response.body", "body": body})


def invalid(errors: Sequence[Mapping[str, Any]]) -> ProblemError:
    """422 for fields that failed validation: each error's `loc`, `msg` and `type` only
    (pydantic's `input` may be a password or a whole oversized body, its `ctx` exceptions)."""
    cleaned: list[dict[str, Any]] = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors
    ]
    detail = "; ".join(f"{_dotted(e['loc'])}: {e['msg']}" for e in cleaned[:5])
    return ProblemError(422, detail=detail, errors=cleaned)


def _dotted(loc: Sequence[object]) -> str:
    return ".".join(map(str, loc))


def invalid_field(loc: Sequence[str | int], msg: str) -> ProblemError:
    """422 for one field that a check outside the model refused (as `invalid` words it)."""
    return invalid([{"loc": loc, "msg": msg, "type": "value_error"}])


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, detail=detail)


def not_found(detail: str = "no such resource") -> ProblemError:
    return ProblemError(404, detail=detail)


def bad_request(detail: str, **extra: Any) -> ProblemError:
    return ProblemError(400, detail=detail, **extra)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, ProblemError):
        return problem_response(exc)
    # The framework's own (404 for no route, 405, FastAPI's 400 for an unparsable body).
    detail = str(exc.detail) if exc.detail else None
    if detail is not None and detail.lower() == reason_phrase(exc.status_code).lower():
        detail = None  # Starlette's default detail: the phrase, already the title
    return problem_response(ProblemError(exc.status_code, detail=detail, headers=exc.headers))


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(bad_request("the request body is not valid JSON"))
    return problem_response(invalid(errors))


UNEXPECTED_DETAIL = "the server failed unexpectedly"


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error", error=type(exc).__name__)
    return problem_response(ProblemError(500, detail=UNEXPECTED_DETAIL))


def install(app: Any) -> None:
    """Answer every error of `app` (a FastAPI or Starlette app) as a problem."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    404: "Not found",
    409: "Conflicts with the resource's state",
    413: "Body too large",
    415: "Unsupported body media type",
    422: "Invalid request",
    429: "Too many attempts: retry after the Retry-After header's seconds",
    503: "Unavailable or overloaded: retry after the Retry-After header's seconds",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a FastAPI route can give."""
    return {
        code: {
            "model": Problem,
            "content": {MEDIA_TYPE: {}},
            "description": _DESCRIPTIONS.get(code, reason_phrase(code)),
        }
        for code in codes
    }
