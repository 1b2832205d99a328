"""/auth/api-keys: admin users create (shown once), list and revoke scoped API keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from starlette.responses import JSONResponse, Response

from orderflow.services.gateway.auth_endpoints import NO_STORE, CurrentPrincipal, Gateway
from orderflow.services.gateway.authn import Principal
from orderflow.services.gateway.names import Name
from orderflow.web.media_types import JSON, requires_media_type
from orderflow.web.problems import forbidden, not_found

SCOPE_NAME = re.compile(r"^[a-z][a-z0-9:._-]{0,63}$")


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    scopes: frozenset[str] = Field(max_length=50)
    # Optional: a key without one lives until it is revoked.
    expires_at: AwareDatetime | None = None

    @field_validator("scopes")
    @classmethod
    def _valid_scopes(cls, scopes: frozenset[str]) -> frozenset[str]:
        # Says what is allowed, not which names were not: nothing sent is echoed back.
        if not all(SCOPE_NAME.match(s) for s in scopes):
            raise ValueError("scope names are a lowercase letter, then up to 63 of a-z 0-9 : . _ -")
        return scopes

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, expires_at: datetime | None) -> datetime | None:
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return expires_at


async def _admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin_user:
        raise forbidden("API keys are managed by admin users")
    return principal


Admin = Annotated[Principal, Depends(_admin)]
router = APIRouter(prefix="/api-keys")


@router.post("", status_code=201, dependencies=[Depends(requires_media_type(JSON))])
async def create_api_key(body: NewApiKey, admin: Admin, gw: Gateway) -> Response:
    key, secret = await gw.api_keys.create(
        body.name.strip(), body.scopes, admin.identity.subject, body.expires_at
    )
    return JSONResponse({**key.public(), "key": secret}, status_code=201, headers=NO_STORE)


@router.get("")
async def list_api_keys(_: Admin, gw: Gateway) -> Response:
    keys = await gw.api_keys.list()
    return JSONResponse({"items": [key.public() for key in keys]})


@router.delete("/{key_id}", status_code=204)
async def revoke_api_key(key_id: str, _: Admin, gw: Gateway) -> Response:
    if not await gw.api_keys.revoke(key_id):
        raise not_found("no such API key")
    return Response(status_code=204)
