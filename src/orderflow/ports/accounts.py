"""The gateway's stores: accounts, refresh tokens and API keys (adapters/gateway_db/ has the SQL).

Errors:
EmailTakenError           an account with that email exists
LastAdminError            the change would leave no enabled admin account
RefreshTokenError         unknown, expired or revoked refresh token
└── RefreshTokenReusedError   a rotated token came back: its whole family is revoked
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from orderflow.domain.identity import Identity

API_KEY_PREFIX = "ofk_"


class EmailTakenError(Exception):
    pass


class LastAdminError(Exception):
    """Disabling or deleting this admin would leave no enabled admin to manage the gateway."""


class RefreshTokenError(Exception):
    """Unknown, expired or revoked refresh token."""


class RefreshTokenReusedError(RefreshTokenError):
    """A rotated token came back; its family has been revoked."""


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    email: str
    name: str
    password_hash: str
    roles: frozenset[str]
    disabled: bool

    def identity(self) -> Identity:
        return Identity(subject=self.id, roles=self.roles, email=self.email)

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "roles": sorted(self.roles),
            "disabled": self.disabled,
        }


@dataclass(frozen=True, slots=True)
class Rotated:
    account_id: str
    token: str  # the successor of the token presented


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key acts as its own principal: its id as subject, no roles, its scopes, so a key can
    never reach more than its scopes allow."""

    id: str
    name: str
    scopes: frozenset[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None  # None: until revoked

    def identity(self) -> Identity:
        return Identity(subject=self.id, roles=frozenset(), scopes=self.scopes)

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(API_KEY_PREFIX)


class Accounts(Protocol):
    async def create(
        self, email: str, name: str, password_hash: str, roles: frozenset[str]
    ) -> Account:
        """Raises EmailTakenError when the (normalised) email has an account already."""
        ...

    async def by_email(self, email: str) -> Account | None: ...

    async def by_id(self, account_id: str) -> Account | None: ...

    async def changes(self) -> int:
        """A number that moves whenever an account is disabled, enabled or deleted."""
        ...

    async def set_disabled(self, account_id: str, disabled: bool) -> Account | None:
        """Disable (ending every refresh-token family of the account) or enable it; None when
        there is no such account. LastAdminError when it would leave no enabled admin."""
        ...

    async def delete(self, account_id: str) -> bool:
        """Delete the account, its refresh tokens, and revoke the API keys it created; False
        when there is no such account. LastAdminError when it would leave no enabled admin."""
        ...


class RefreshTokens(Protocol):
    """Rotating refresh tokens in families (one per login)."""

    async def start_family(self, account_id: str) -> str: ...

    async def rotate(self, token: str) -> Rotated:
        """Use `token` up and return its successor; RefreshTokenError (Reused) otherwise."""
        ...

    async def revoke(self, token: str) -> None:
        """End the family `token` belongs to (silently if it is unknown)."""
        ...


class ApiKeys(Protocol):
    async def create(
        self,
        name: str,
        scopes: frozenset[str],
        created_by: str,
        expires_at: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """The new key and its secret credential (shown once, stored only as a digest)."""
        ...

    async def list(self) -> list[ApiKey]: ...

    async def revoke(self, key_id: str) -> bool:
        """False when there is no such key (revoking a revoked key is True)."""
        ...

    async def authenticate(self, credential: str) -> ApiKey | None:
        """The key the credential belongs to while it is neither revoked nor expired, else None.
        (Whether its creator may still act is the caller's question.)"""
        ...
