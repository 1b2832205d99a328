"""/auth/api-keys: admin users create (shown once), list and revoke scoped API keys."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orderflow.services.gateway.auth_endpoints import NO_STORE, gateway, require_principal
from orderflow.services.gateway.authn import Principal
from orderflow.services.gateway.problems import forbidden, not_found
from orderflow.services.gateway.requests import read_body

SCOPE_NAME = re.compile(r"^[a-z][a-z0-9:._-]{0,63}$")


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    scopes: frozenset[str] = Field(max_length=50)

    @field_validator("scopes")
    @classmethod
    def _valid_scopes(cls, scopes: frozenset[str]) -> frozenset[str]:
        bad = sorted(s for s in scopes if not SCOPE_NAME.match(s))
        if bad:
            raise ValueError(f"invalid scope names: {bad}")
        return scopes


async def _admin(request: Request) -> Principal:
    principal = await require_principal(request)
    if not principal.is_admin_user:
        raise forbidden("API keys are managed by admin users")
    return principal


async def create_api_key(request: Request) -> Response:
    admin = await _admin(request)
    body = await read_body(request, NewApiKey)
    key, secret = await gateway(request).api_keys.create(
        body.name.strip(), body.scopes, admin.identity.subject
    )
    return JSONResponse({**key.public(), "key": secret}, status_code=201, headers=NO_STORE)


async def list_api_keys(request: Request) -> Response:
    await _admin(request)
    keys = await gateway(request).api_keys.list()
    return JSONResponse({"items": [key.public() for key in keys]})


async def revoke_api_key(request: Request) -> Response:
    await _admin(request)
    if not await gateway(request).api_keys.revoke(str(request.path_params["key_id"])):
        raise not_found("no such API key")
    return Response(status_code=204)
