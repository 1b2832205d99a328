"""Signed identities: access tokens the gateway issues to clients, and identity assertions it
signs for the backends behind it (adapters/identity/ holds the keys and the JWT code)."""

from __future__ import annotations

from typing import Protocol

from orderflow.domain.identity import Identity

ASSERTION_HEADER = "X-OrderFlow-Identity"


class InvalidTokenError(Exception):
    """The access token is malformed, expired, not yet valid, or not signed by one of our keys."""


class InvalidAssertionError(Exception):
    """The assertion is missing, malformed, expired, or not signed by a trusted key."""


class AccessTokens(Protocol):
    @property
    def ttl(self) -> int:
        """Seconds an access token lives."""
        ...

    def issue(self, identity: Identity) -> str: ...

    def verify(self, token: str) -> Identity:
        """The identity the token names; InvalidTokenError otherwise."""
        ...

    def verify_until(self, token: str) -> tuple[Identity, float]:
        """The identity and when the token expires (a stream it opened ends then)."""
        ...

    def issue_ticket(self, identity: Identity, until: float, ttl: float, jti: str) -> str:
        """A single-use stream ticket standing in for a credential valid `until`."""
        ...

    def redeem_ticket(self, ticket: str) -> tuple[Identity, float, str, float]:
        """(identity, credential expiry, jti, ticket expiry); InvalidTokenError if invalid."""
        ...

    def jwks(self) -> bytes:
        """The public keys tokens are verified with, as a JWKS document."""
        ...


class IdentitySigner(Protocol):
    def sign(self, identity: Identity, now: float | None = None) -> str:
        """An assertion (the value of ASSERTION_HEADER) vouching for `identity`."""
        ...


class IdentityVerifier(Protocol):
    def verify(self, token: str | None) -> Identity:
        """The identity an assertion vouches for; InvalidAssertionError otherwise."""
        ...
