"""Who is calling: the identity the gateway vouches for."""

from __future__ import annotations

from dataclasses import dataclass

CUSTOMER = "customer"
ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str  # the account id (a UUID string)
    roles: frozenset[str]
    scopes: frozenset[str] = frozenset()
    email: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles
