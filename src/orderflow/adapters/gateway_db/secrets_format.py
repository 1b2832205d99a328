"""Opaque credentials shaped `<prefix><id>.<secret>`: the id finds the row, the secret is only
ever stored as its SHA-256 (enough for 256-bit random secrets) and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


def split(token: str, prefix: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed credential, else None."""
    if not token.startswith(prefix) or len(token) > 256:
        return None
    ident, dot, secret = token.removeprefix(prefix).partition(".")
    if not dot or not ident or not secret or not token.isascii():
        return None
    return ident, secret
