"""/auth/accounts: admin users find an account by email, disable, enable or delete it.

A disabled or deleted account is refused on its next request (account_state.py says how soon
other gateway processes follow); disabling also ends its refresh tokens, deleting revokes the
API keys it created. No change may leave the gateway without an enabled admin (409 last_admin),
so an admin can disable or delete themselves only while another enabled admin remains.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Query
from starlette.responses import JSONResponse, Response

from orderflow.ports.accounts import LastAdminError
from orderflow.services.gateway.auth_endpoints import CurrentPrincipal, Gateway
from orderflow.services.gateway.authn import Principal
from orderflow.services.gateway.emails import normalise_email
from orderflow.services.gateway.state import GatewayState
from orderflow.web.problems import ProblemError, forbidden, not_found


async def _admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin_user:
        raise forbidden("accounts are managed by admin users")
    return principal


Admin = Annotated[Principal, Depends(_admin)]
router = APIRouter(prefix="/accounts")
log = structlog.get_logger("orderflow.gateway.accounts")


@router.get("")
async def find_account(
    email: Annotated[str, Query(max_length=320)], _: Admin, gw: Gateway
) -> Response:
    normalised = normalise_email(email)
    account = await gw.accounts.by_email(normalised) if normalised else None
    return JSONResponse({"items": [account.public()] if account else []})


@router.post("/{account_id}/disable")
async def disable_account(account_id: str, admin: Admin, gw: Gateway) -> Response:
    return await _set_disabled(gw, account_id, True, admin)


@router.post("/{account_id}/enable")
async def enable_account(account_id: str, admin: Admin, gw: Gateway) -> Response:
    return await _set_disabled(gw, account_id, False, admin)


@router.delete("/{account_id}", status_code=204)
async def delete_account(account_id: str, admin: Admin, gw: Gateway) -> Response:
    try:
        deleted = await gw.accounts.delete(account_id)
    except LastAdminError as exc:
        raise _last_admin(exc) from exc
    gw.account_states.forget(account_id)
    if not deleted:
        raise not_found("no such account")
    log.info("account_deleted", account_id=account_id, by=admin.identity.subject)
    return Response(status_code=204)


async def _set_disabled(
    gw: GatewayState, account_id: str, disabled: bool, admin: Principal
) -> Response:
    try:
        account = await gw.accounts.set_disabled(account_id, disabled)
    except LastAdminError as exc:
        raise _last_admin(exc) from exc
    gw.account_states.forget(account_id)
    if account is None:
        raise not_found("no such account")
    event = "account_disabled" if disabled else "account_enabled"
    log.info(event, account_id=account_id, by=admin.identity.subject)
    return JSONResponse(account.public())


def _last_admin(exc: LastAdminError) -> ProblemError:
    return ProblemError(409, detail=str(exc), reason="last_admin")
