"""Accounts (customers and admins) in the gateway database (the `Accounts` port)."""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from orderflow.adapters.gateway_db.clock import utcnow
from orderflow.adapters.gateway_db.tables import accounts
from orderflow.ports.accounts import Account, EmailTakenError


class SqlAccounts:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self, email: str, name: str, password_hash: str, roles: frozenset[str]
    ) -> Account:
        account = Account(str(uuid.uuid4()), email, name, password_hash, roles, False)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(accounts).values(
                        id=account.id,
                        email=email,
                        name=name,
                        password_hash=password_hash,
                        roles=sorted(roles),
                        disabled=False,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError as exc:
            raise EmailTakenError(email) from exc
        return account

    async def by_email(self, email: str) -> Account | None:
        return await self._one(accounts.c.email == email)

    async def by_id(self, account_id: str) -> Account | None:
        return await self._one(accounts.c.id == account_id)

    async def _one(self, condition: object) -> Account | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(accounts).where(condition))).mappings().first()  # type: ignore[arg-type]
        if row is None:
            return None
        return Account(
            id=row["id"],
            email=row["email"],
            name=row["name"],
            password_hash=row["password_hash"],
            roles=frozenset(row["roles"]),
            disabled=bool(row["disabled"]),
        )
