"""/auth: registration, the OAuth2 password and refresh grants, logout and /auth/me."""

from __future__ import annotations

import contextlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orderflow.adapters.gateway_db.accounts import Account, EmailTakenError
from orderflow.adapters.gateway_db.refresh_tokens import RefreshTokenError, RefreshTokenReusedError
from orderflow.domain.identity import CUSTOMER
from orderflow.services.gateway.authn import Principal
from orderflow.services.gateway.emails import normalise_email
from orderflow.services.gateway.problems import GatewayError, unauthorized
from orderflow.services.gateway.rate_limit import too_many_requests
from orderflow.services.gateway.requests import read_body
from orderflow.services.gateway.state import GatewayState
from orderflow.services.gateway.upstream_headers import facts

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
REGISTERED = {
    "status": "accepted",
    "detail": "If this address was not registered yet, its account now exists: log in at "
    "/auth/token.",
}


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    name: str = Field(min_length=1, max_length=200)


class TokenForm(BaseModel):
    grant_type: Literal["password", "refresh_token"] = "password"
    username: str = Field("", max_length=320)
    password: str = Field("", max_length=1024)
    refresh_token: str = Field("", max_length=256)
    scope: str = ""


class RefreshBody(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=256)


def gateway(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


async def register(request: Request) -> Response:
    gw = gateway(request)
    _limit(gw.limiters.register_ip.check_and_hit(facts(request.scope).client_ip))
    body = await read_body(request, RegisterBody)
    email = normalise_email(body.email)
    if email is None:
        raise _validation("email", "not an email address")
    if len(body.password) < gw.settings.password_min_length:
        raise _validation("password", f"at least {gw.settings.password_min_length} characters")
    _limit(gw.limiters.register_account.check_and_hit(email))
    # Hash before looking anything up, and answer the same either way: registering must not
    # tell anyone whether an address already has an account.
    password_hash = await gw.passwords.hash(body.password)
    with contextlib.suppress(EmailTakenError):
        await gw.accounts.create(email, body.name.strip(), password_hash, frozenset({CUSTOMER}))
    return JSONResponse(REGISTERED, status_code=202)


async def token(request: Request) -> Response:
    gw = gateway(request)
    form = await read_body(request, TokenForm, form_too=True)
    if form.grant_type == "refresh_token":
        return await _rotate(gw, form.refresh_token)
    _limit(gw.limiters.login_ip.check_and_hit(facts(request.scope).client_ip))
    email = normalise_email(form.username) or form.username.strip().lower()
    # The attempt is counted before the (slow) password check, so parallel guesses cannot all
    # slip in under the limit; a successful login takes its count back.
    _limit(gw.limiters.login_account.check_and_hit(email))
    account = await gw.accounts.by_email(email) if normalise_email(email) else None
    ok = await gw.passwords.verify(account.password_hash if account else None, form.password)
    if account is None or not ok or account.disabled:
        raise _bad_credentials()
    gw.limiters.login_account.forgive(email)
    return await _issue(gw, account, await gw.refresh_tokens.start_family(account.id))


async def refresh(request: Request) -> Response:
    body = await read_body(request, RefreshBody, form_too=True)
    return await _rotate(gateway(request), body.refresh_token)


async def logout(request: Request) -> Response:
    body = await read_body(request, RefreshBody, form_too=True)
    await gateway(request).refresh_tokens.revoke(body.refresh_token)
    return Response(status_code=204)


async def ticket(request: Request) -> Response:
    """A single-use, 30-second ticket for opening one live stream (`?ticket=` on /ws or
    /events), for browsers, which cannot send the token in a header there."""
    gw = gateway(request)
    principal = await require_principal(request)
    body = {"ticket": gw.tickets.issue(principal), "expires_in": int(gw.tickets.ttl)}
    return JSONResponse(body, headers=NO_STORE)


async def me(request: Request) -> Response:
    principal = await require_principal(request)
    if principal.kind == "api_key":
        ident = principal.identity
        return JSONResponse(
            {"id": ident.subject, "kind": "api_key", "scopes": sorted(ident.scopes)}
        )
    account = await gateway(request).accounts.by_id(principal.identity.subject)
    if account is None or account.disabled:
        raise unauthorized("account no longer exists")
    return JSONResponse(
        {
            "id": account.id,
            "kind": "user",
            "email": account.email,
            "name": account.name,
            "roles": sorted(account.roles),
        }
    )


async def require_principal(request: Request) -> Principal:
    principal = await gateway(request).authenticator.authenticate(request.headers)
    if principal is None:
        raise unauthorized("authentication required")
    return principal


async def _rotate(gw: GatewayState, refresh_token: str) -> Response:
    try:
        rotated = await gw.refresh_tokens.rotate(refresh_token)
    except RefreshTokenReusedError as exc:
        raise _invalid_grant(str(exc), "refresh_token_reused") from exc
    except RefreshTokenError as exc:
        raise _invalid_grant(str(exc), "invalid_refresh_token") from exc
    account = await gw.accounts.by_id(rotated.account_id)
    if account is None or account.disabled:
        await gw.refresh_tokens.revoke(rotated.token)
        raise _invalid_grant("account no longer exists", "invalid_refresh_token")
    return await _issue(gw, account, rotated.token)


async def _issue(gw: GatewayState, account: Account, refresh_token: str) -> Response:
    return JSONResponse(
        {
            "access_token": gw.tokens.issue(account.identity()),
            "token_type": "Bearer",
            "expires_in": gw.tokens.ttl,
            "refresh_token": refresh_token,
        },
        headers=NO_STORE,
    )


def _limit(wait: float | None) -> None:
    if wait is not None:
        raise too_many_requests(wait)


def _bad_credentials() -> GatewayError:
    return _invalid_grant("invalid email or password", "invalid_credentials")


def _invalid_grant(detail: str, reason: str) -> GatewayError:
    error = unauthorized(detail)
    error.extra.update(error="invalid_grant", reason=reason)
    return error


def _validation(field: str, message: str) -> GatewayError:
    return GatewayError(
        422,
        "Unprocessable Content",
        "request body failed validation",
        errors=[{"loc": [field], "msg": message}],
    )
