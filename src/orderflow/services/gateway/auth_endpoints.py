"""/auth: registration, the OAuth2 password and refresh grants, logout and /auth/me.

FastAPI routes: bodies are pydantic models validated by the framework (a bad one is a 422 naming
the fields, never echoing what was sent: it may be a password), and each route says which body
type it takes (415 for another).
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from orderflow.domain.identity import CUSTOMER
from orderflow.ports.accounts import (
    Account,
    EmailTakenError,
    RefreshTokenError,
    RefreshTokenReusedError,
)
from orderflow.services.gateway.authn import Principal, unauthorized
from orderflow.services.gateway.emails import normalise_email
from orderflow.services.gateway.names import Name
from orderflow.services.gateway.state import GatewayState
from orderflow.web.media_types import FORM, JSON, requires_media_type
from orderflow.web.problems import ProblemError, invalid_field
from orderflow.web.request_context import client_ip_of

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
REGISTERED = {
    "status": "accepted",
    "detail": "If this address was not registered yet, its account now exists: log in at "
    "/auth/token.",
}


def _email(value: str) -> str:
    email = normalise_email(value)
    if email is None:
        raise ValueError("not an email address")
    return email


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[str, Field(max_length=320), AfterValidator(_email)]
    password: str = Field(max_length=1024)
    name: Name


class TokenForm(BaseModel):
    """RFC 6749's token request (form-encoded): the password grant, or the refresh grant."""

    grant_type: Literal["password", "refresh_token"] = "password"
    username: str = Field("", max_length=320)
    password: str = Field("", max_length=1024)
    refresh_token: str = Field("", max_length=256)
    scope: str = Field("", max_length=1024)


class RefreshBody(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=256)


async def _gateway(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


Gateway = Annotated[GatewayState, Depends(_gateway)]


async def _principal(request: Request, gw: Gateway) -> Principal:
    principal = await gw.authenticator.authenticate(request.headers)
    if principal is None:
        raise unauthorized("authentication required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]


async def _register_ip_limit(request: Request, gw: Gateway) -> None:
    # A dependency: it runs before the body is validated, so bad bodies count too.
    await gw.throttles.register_from(client_ip_of(request.scope))


JSON_BODY = Depends(requires_media_type(JSON))
router = APIRouter()


@router.post("/register", status_code=202, dependencies=[JSON_BODY, Depends(_register_ip_limit)])
async def register(body: RegisterBody, gw: Gateway) -> Response:
    if len(body.password) < gw.settings.password_min_length:
        minimum = gw.settings.password_min_length
        raise invalid_field(["body", "password"], f"at least {minimum} characters")
    await gw.throttles.register_email(body.email)
    # Hash before looking anything up, and answer the same either way: registering must not
    # tell anyone whether an address already has an account.
    password_hash = await gw.passwords.hash(body.password)
    with contextlib.suppress(EmailTakenError):
        await gw.accounts.create(
            body.email, body.name.strip(), password_hash, frozenset({CUSTOMER})
        )
    return JSONResponse(REGISTERED, status_code=202)


@router.post("/token", dependencies=[Depends(requires_media_type(FORM))])
async def token(form: Annotated[TokenForm, Form()], request: Request, gw: Gateway) -> Response:
    if form.grant_type == "refresh_token":
        return await _rotate(gw, form.refresh_token)
    client = client_ip_of(request.scope)
    email = normalise_email(form.username) or form.username.strip().lower()
    await gw.throttles.login(email, client)  # services/gateway/rate_limit.py: which limits
    account = await gw.accounts.by_email(email) if normalise_email(email) else None
    ok = await gw.passwords.verify(account.password_hash if account else None, form.password)
    if account is None or not ok or account.disabled:
        raise _bad_credentials()
    await gw.throttles.login_succeeded(email, client)
    return await _issue(gw, account, await gw.refresh_tokens.start_family(account.id))


@router.post("/refresh", dependencies=[JSON_BODY])
async def refresh(body: RefreshBody, gw: Gateway) -> Response:
    return await _rotate(gw, body.refresh_token)


@router.post("/logout", status_code=204, dependencies=[JSON_BODY])
async def logout(body: RefreshBody, gw: Gateway) -> Response:
    await gw.refresh_tokens.revoke(body.refresh_token)
    return Response(status_code=204)


@router.post("/ticket")
async def ticket(principal: CurrentPrincipal, gw: Gateway) -> Response:
    """A single-use, 30-second ticket for opening one live stream (`?ticket=` on /ws or
    /events), for browsers, which cannot send the token in a header there."""
    body = {"ticket": gw.tickets.issue(principal), "expires_in": int(gw.tickets.ttl)}
    return JSONResponse(body, headers=NO_STORE)


@router.get("/me")
async def me(principal: CurrentPrincipal, gw: Gateway) -> Response:
    if principal.kind == "api_key":
        ident = principal.identity
        return JSONResponse(
            {"id": ident.subject, "kind": "api_key", "scopes": sorted(ident.scopes)}
        )
    account = await gw.accounts.by_id(principal.identity.subject)
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


def _bad_credentials() -> ProblemError:
    return _invalid_grant("invalid email or password", "invalid_credentials")


def _invalid_grant(detail: str, reason: str) -> ProblemError:
    return unauthorized(detail, error="invalid_grant", reason=reason)
