"""Who is calling: the backends verify the identity the gateway vouches for in a header."""

from __future__ import annotations

from typing import Protocol

from orderflow.domain.identity import Identity

HEADER = "X-OrderFlow-Identity"


class IdentityRejectedError(Exception):
    """The assertion is missing, malformed, expired, or not signed by a trusted key."""


class IdentityVerifier(Protocol):
    def verify(self, token: str | None) -> Identity:
        """The identity the token vouches for; IdentityRejectedError otherwise."""
        ...
