"""Scoped API keys for machine clients (the `ApiKeys` port): shown once, stored as a digest,
revocable."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from orderflow.adapters.gateway_db import secrets_format
from orderflow.adapters.gateway_db.clock import aware, utcnow
from orderflow.adapters.gateway_db.tables import api_keys
from orderflow.ports.accounts import API_KEY_PREFIX as PREFIX
from orderflow.ports.accounts import ApiKey


class SqlApiKeys:
    def __init__(self, engine: AsyncEngine, cache_seconds: float) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        # A short positive cache keeps the hot path off the database; revoking in this process
        # clears it at once, other gateway processes follow within `cache_seconds`.
        self._cache: dict[str, tuple[ApiKey, str, float]] = {}

    async def create(
        self,
        name: str,
        scopes: frozenset[str],
        created_by: str,
        expires_at: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        key_id, secret = str(uuid.uuid4()), secrets_format.new_secret()
        key = ApiKey(key_id, name, scopes, created_by, utcnow(), None, expires_at)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    name=name,
                    key_hash=secrets_format.digest(secret),
                    scopes=sorted(scopes),
                    created_by=created_by,
                    created_at=key.created_at,
                    expires_at=expires_at,
                )
            )
        return key, f"{PREFIX}{key_id}.{secret}"

    async def list(self) -> list[ApiKey]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(api_keys).order_by(api_keys.c.created_at))).mappings()
            return [_from_row(row) for row in rows]

    async def revoke(self, key_id: str) -> bool:
        self._cache.pop(key_id, None)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            if result.rowcount == 1:
                return True
            exists = await conn.execute(select(api_keys.c.id).where(api_keys.c.id == key_id))
            return exists.first() is not None

    async def authenticate(self, credential: str) -> ApiKey | None:
        parts = secrets_format.split(credential, PREFIX)
        if parts is None:
            return None
        key_id, secret = parts
        cached = self._cache.get(key_id)
        if cached is not None and cached[2] > time.monotonic():
            key, key_hash = cached[0], cached[1]
        else:
            async with self._engine.connect() as conn:
                query = select(api_keys).where(api_keys.c.id == key_id)
                row = (await conn.execute(query)).mappings().first()
            if row is None:
                return None
            key, key_hash = _from_row(row), str(row["key_hash"])
            if key.revoked_at is None:
                self._cache[key_id] = (key, key_hash, time.monotonic() + self._cache_seconds)
        if not secrets_format.matches(secret, key_hash) or key.revoked_at is not None:
            return None
        if key.expires_at is not None and key.expires_at <= utcnow():
            return None
        return key


def _from_row(row: object) -> ApiKey:
    data = dict(row)  # type: ignore[call-overload]
    return ApiKey(
        id=data["id"],
        name=data["name"],
        scopes=frozenset(data["scopes"]),
        created_by=data["created_by"],
        created_at=aware(data["created_at"]),
        revoked_at=aware(data["revoked_at"]) if data["revoked_at"] else None,
        expires_at=aware(data["expires_at"]) if data["expires_at"] else None,
    )
