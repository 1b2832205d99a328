"""Who is calling (bearer access token or API key) and whether a route lets them in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import Headers

from orderflow.domain.identity import ADMIN, Identity
from orderflow.ports.accounts import ApiKeys, looks_like_api_key
from orderflow.ports.identity import AccessTokens, InvalidTokenError
from orderflow.services.gateway.account_state import AccountStates, AccountStateUnavailableError
from orderflow.services.gateway.routes import RouteSpec
from orderflow.web.problems import ProblemError, bad_request, forbidden


@dataclass(frozen=True, slots=True)
class Principal:
    identity: Identity
    kind: Literal["user", "api_key"]
    # When the credential stops being valid (None: an API key, valid until revoked); a stream
    # it opened is ended then.
    expires_at: float | None = None

    @property
    def is_admin_user(self) -> bool:
        return self.kind == "user" and ADMIN in self.identity.roles


class Authenticator:
    def __init__(self, tokens: AccessTokens, api_keys: ApiKeys, states: AccountStates) -> None:
        self._tokens = tokens
        self._api_keys = api_keys
        self._states = states

    async def authenticate(
        self, headers: Headers, query_token: str | None = None
    ) -> Principal | None:
        """The caller, None when no credentials were sent, ProblemError when they are bad."""
        authorization = headers.getlist("authorization")
        api_key = headers.getlist("x-api-key")
        if len(authorization) > 1 or len(api_key) > 1:
            raise bad_request("send credentials once", reason="duplicate_credentials")
        if sum(map(bool, (authorization, api_key, query_token))) > 1:
            raise bad_request("send one kind of credentials", reason="ambiguous_credentials")
        if api_key:
            return await self._by_api_key(api_key[0].strip())
        if authorization:
            return await self._by_credential(_bearer(authorization[0]))
        if query_token is not None:
            return await self._by_credential(query_token)
        return None

    async def _by_credential(self, credential: str) -> Principal:
        if looks_like_api_key(credential):
            return await self._by_api_key(credential)
        try:
            identity, expires_at = self._tokens.verify_until(credential)
        except InvalidTokenError as exc:
            raise _invalid(str(exc), "invalid_token") from exc
        return await self.admit(Principal(identity, "user", expires_at))

    async def admit(self, principal: Principal) -> Principal:
        """`principal` (a signed-in user) if their account still exists and is enabled."""
        state = await self._state(principal.identity.subject)
        if state == "disabled":
            raise _invalid("this account is disabled", "account_disabled")
        if state == "deleted":
            raise _invalid("this account no longer exists", "account_deleted")
        return principal

    async def _by_api_key(self, credential: str) -> Principal:
        key = await self._api_keys.authenticate(credential)
        if key is None:
            raise _invalid("invalid, revoked or expired API key", "invalid_api_key")
        # A key acts for the admin who created it: it stops while they are disabled or gone.
        if await self._state(key.created_by) != "active":
            raise _invalid(
                "the admin who created this API key is disabled or deleted",
                "api_key_owner_disabled",
            )
        return Principal(key.identity(), "api_key")

    async def _state(self, account_id: str) -> str:
        try:
            return await self._states.state(account_id)
        except AccountStateUnavailableError as exc:
            raise ProblemError(
                503,
                detail="accounts cannot be checked right now; retry shortly",
                reason="accounts_unavailable",
                headers={"Retry-After": "1"},
            ) from exc


def authorize(route: RouteSpec, principal: Principal | None) -> None:
    if route.access == "public":
        return
    if principal is None:
        raise _invalid("authentication required", "missing_credentials")
    identity = principal.identity
    if principal.kind == "api_key":
        # Keys reach only routes that name the scopes they need: a route without scopes is for
        # people, so a key minted for one purpose cannot wander into another.
        if not route.scopes:
            raise forbidden("API keys cannot use this route")
        if not route.scopes <= identity.scopes:
            raise forbidden("API key lacks a required scope")
        return
    if route.access == "roles" and not route.roles & identity.roles:
        raise forbidden("your role does not allow this route")


def _bearer(header: str) -> str:
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer":
        raise _invalid("only Bearer authorization is accepted", "unsupported_scheme")
    if not credential or " " in credential or not credential.isascii():
        raise _invalid("malformed Authorization header", "malformed_authorization")
    return credential


def unauthorized(detail: str, **extra: str) -> ProblemError:
    return ProblemError(
        401, detail=detail, headers={"WWW-Authenticate": 'Bearer realm="orderflow"'}, **extra
    )


def _invalid(detail: str, reason: str) -> ProblemError:
    return unauthorized(detail, reason=reason)
