"""Rotating refresh tokens with reuse detection, in families as in OAuth 2.0 Security BCP 4.14
(the `RefreshTokens` port).

Each login starts a family; every refresh marks the presented token used and issues its
successor in the same family. Presenting a used token means it leaked (or a client raced
itself): the whole family is revoked, so the thief and the victim both have to log in again.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from orderflow.adapters.gateway_db import secrets_format
from orderflow.adapters.gateway_db.clock import aware, utcnow
from orderflow.adapters.gateway_db.tables import refresh_tokens
from orderflow.ports.accounts import RefreshTokenError, RefreshTokenReusedError, Rotated

PREFIX = "ofr_"


class SqlRefreshTokens:
    def __init__(self, engine: AsyncEngine, ttl: int) -> None:
        self._engine = engine
        self._ttl = timedelta(seconds=ttl)

    async def start_family(self, account_id: str) -> str:
        async with self._engine.begin() as conn:
            return await self._insert(conn, account_id, secrets.token_hex(16), utcnow())

    async def rotate(self, token: str) -> Rotated:
        now = utcnow()
        reused = False
        async with self._engine.begin() as conn:
            row = await self._find(conn, token)
            if row is None or row["revoked_at"] is not None or aware(row["expires_at"]) <= now:
                raise RefreshTokenError("refresh token is invalid or expired")
            claimed = await conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.id == row["id"], refresh_tokens.c.used_at.is_(None))
                .values(used_at=now)
            )
            if claimed.rowcount != 1:
                reused = True
                await self._revoke_family(conn, row["family_id"], now)
            else:
                new = await self._insert(conn, row["account_id"], row["family_id"], now)
        if reused:
            raise RefreshTokenReusedError("refresh token reused; all its sessions are revoked")
        return Rotated(row["account_id"], new)

    async def revoke(self, token: str) -> None:
        """Logout: end the family the token belongs to (silently if it is unknown)."""
        async with self._engine.begin() as conn:
            row = await self._find(conn, token)
            if row is not None:
                await self._revoke_family(conn, row["family_id"], utcnow())

    async def _find(self, conn: AsyncConnection, token: str) -> dict[str, Any] | None:
        parts = secrets_format.split(token, PREFIX)
        if parts is None:
            return None
        token_id, secret = parts
        query = select(refresh_tokens).where(refresh_tokens.c.id == token_id)
        row = (await conn.execute(query)).mappings().first()
        if row is None or not secrets_format.matches(secret, str(row["token_hash"])):
            return None
        return dict(row)

    async def _insert(
        self, conn: AsyncConnection, account_id: object, family_id: object, now: datetime
    ) -> str:
        token_id, secret = secrets.token_hex(16), secrets_format.new_secret()
        await conn.execute(
            insert(refresh_tokens).values(
                id=token_id,
                family_id=family_id,
                account_id=account_id,
                token_hash=secrets_format.digest(secret),
                issued_at=now,
                expires_at=now + self._ttl,
            )
        )
        return f"{PREFIX}{token_id}.{secret}"

    async def _revoke_family(self, conn: AsyncConnection, family_id: object, now: datetime) -> None:
        await conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
