"""argon2id password hashing, run off the event loop, with a dummy hash for unknown accounts."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    def __init__(self, time_cost: int, memory_cost: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        # Verifying a login for an account that does not exist costs the same as a wrong
        # password, so response timing does not reveal which emails are registered.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            ok = self._hasher.verify(stored_hash or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and stored_hash is not None
