"""Reading request bodies into validated models, with problem+json for anything malformed."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from orderflow.services.gateway.problems import GatewayError

Model = TypeVar("Model", bound=BaseModel)


async def read_body(request: Request, model: type[Model], *, form_too: bool = False) -> Model:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: Any
    if content_type == "application/json":
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise GatewayError(400, "Bad Request", "body is not valid JSON") from exc
    elif form_too and content_type == "application/x-www-form-urlencoded":
        async with request.form(max_files=0, max_fields=20) as form:
            data = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        expected = "JSON or form-encoded" if form_too else "JSON"
        raise GatewayError(415, "Unsupported Media Type", f"send a {expected} body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Field locations and messages only: echoing input could send a password back.
        errors = [{"loc": [str(p) for p in err["loc"]], "msg": err["msg"]} for err in exc.errors()]
        raise GatewayError(
            422, "Unprocessable Content", "request body failed validation", errors=errors
        ) from exc
