"""Accounts (customers and admins) in the gateway database (the `Accounts` port)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Text, cast, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from orderflow.adapters.gateway_db.clock import utcnow
from orderflow.adapters.gateway_db.tables import accounts, api_keys, refresh_tokens
from orderflow.domain.identity import ADMIN
from orderflow.ports.accounts import Account, EmailTakenError, LastAdminError

# Changes that may remove the last enabled admin queue on this (PostgreSQL) transaction lock, so
# two admins disabling each other at once cannot both succeed. SQLite needs none: the first
# statement of such a change is a write, which holds the database's one write lock to the end.
_ADMIN_CHANGE_LOCK = 0x0F_AD_1111


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
        async with self._engine.connect() as conn:
            return await _one(conn, accounts.c.email == email)

    async def by_id(self, account_id: str) -> Account | None:
        async with self._engine.connect() as conn:
            return await _one(conn, accounts.c.id == account_id)

    async def set_disabled(self, account_id: str, disabled: bool) -> Account | None:
        async with self._engine.begin() as conn:
            await _lock_admin_changes(conn)
            changed = await conn.execute(
                update(accounts).where(accounts.c.id == account_id).values(disabled=disabled)
            )
            if changed.rowcount != 1:
                return None
            account = await _one(conn, accounts.c.id == account_id)
            assert account is not None  # updated in this very transaction
            if disabled:
                await _refuse_if_no_admin_left(conn, account)
                # Signed-out everywhere: enabling the account again does not revive its sessions.
                await conn.execute(
                    update(refresh_tokens)
                    .where(
                        refresh_tokens.c.account_id == account_id,
                        refresh_tokens.c.revoked_at.is_(None),
                    )
                    .values(revoked_at=utcnow())
                )
        return account

    async def delete(self, account_id: str) -> bool:
        async with self._engine.begin() as conn:
            await _lock_admin_changes(conn)
            # Refresh tokens go with the row (ON DELETE CASCADE too). A write first: on SQLite
            # it takes the write lock before anything is read (see _ADMIN_CHANGE_LOCK).
            await conn.execute(
                delete(refresh_tokens).where(refresh_tokens.c.account_id == account_id)
            )
            account = await _one(conn, accounts.c.id == account_id)
            deleted = await conn.execute(delete(accounts).where(accounts.c.id == account_id))
            if account is None or deleted.rowcount != 1:
                return False
            await _refuse_if_no_admin_left(conn, account)
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.created_by == account_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return True


async def _lock_admin_changes(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADMIN_CHANGE_LOCK})


async def _refuse_if_no_admin_left(conn: AsyncConnection, account: Account) -> None:
    """Raise LastAdminError (rolling the change back) when `account` was an admin and no
    enabled admin remains after the change made in this transaction."""
    if ADMIN not in account.roles:
        return
    # Roles are a JSON list of fixed names, so its text holds `"admin"` exactly for admins; a
    # text match works on both engines' JSON types.
    query = select(func.count()).where(
        cast(accounts.c.roles, Text).like(f'%"{ADMIN}"%'), accounts.c.disabled.is_(False)
    )
    if (await conn.execute(query)).scalar_one() == 0:
        raise LastAdminError("at least one enabled admin account must remain")


async def _one(conn: AsyncConnection, condition: Any) -> Account | None:
    row = (await conn.execute(select(accounts).where(condition))).mappings().first()
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
