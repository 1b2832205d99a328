"""`requires_media_type`: a FastAPI dependency that answers 415 to a body of another type.

FastAPI reads a JSON body only when it is declared JSON and validates anything else as if no body
came (a 422 that blames the fields); a route with this dependency says what it wants instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from orderflow.web.problems import ProblemError

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def requires_media_type(*accepted: str) -> Callable[[Request], Awaitable[None]]:
    async def check(request: Request) -> None:
        given = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if given not in accepted:
            raise ProblemError(415, detail=f"send a {' or '.join(accepted)} body")

    return check
