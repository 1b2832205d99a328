"""Stream tickets: what a browser puts in a WebSocket or EventSource URL instead of its token.

Browsers cannot set headers on either, and a URL ends up in logs and histories; a ticket there
is harmless: it lives 30 seconds and opens one stream, once. It is signed (any gateway instance
accepts it); being used once is remembered by the gateway that redeemed it, so with several
gateways a stolen ticket could open one stream per instance within its 30 seconds. The stream
it opens ends when the access token it was issued for expires.
"""

from __future__ import annotations

import secrets
import time

from orderflow.ports.identity import AccessTokens, InvalidTokenError
from orderflow.services.gateway.authn import Principal, unauthorized
from orderflow.web.problems import ProblemError, forbidden

TICKET_TTL = 30.0
PARAM = "ticket"


class Tickets:
    def __init__(self, tokens: AccessTokens, ttl: float = TICKET_TTL) -> None:
        self._tokens = tokens
        self._ttl = ttl
        self._used: dict[str, float] = {}  # jti -> when the ticket expires

    @property
    def ttl(self) -> float:
        return self._ttl

    def issue(self, principal: Principal) -> str:
        if principal.kind != "user" or principal.expires_at is None:
            raise forbidden("tickets are for signed-in users")
        jti = secrets.token_urlsafe(16)
        return self._tokens.issue_ticket(principal.identity, principal.expires_at, self._ttl, jti)

    def redeem(self, ticket: str) -> Principal:
        try:
            identity, until, jti, expires = self._tokens.redeem_ticket(ticket)
        except InvalidTokenError as exc:
            raise _invalid(str(exc)) from exc
        now = time.time()
        if len(self._used) > 10_000:
            self._used = {j: t for j, t in self._used.items() if t > now}
        if jti in self._used:
            raise _invalid("ticket already used")
        self._used[jti] = expires
        if until <= now:
            raise _invalid("the access token behind this ticket has expired")
        return Principal(identity, "user", until)


def _invalid(detail: str) -> ProblemError:
    return unauthorized(detail, reason="invalid_ticket")
