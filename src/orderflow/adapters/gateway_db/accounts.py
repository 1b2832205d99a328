"""Accounts (customers and admins) in the gateway database (the `Accounts` port)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Text, cast, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from orderflow.adapters.gateway_db.clock import utcnow
from orderflow.adapters.gateway_db.tables import (
    account_changes,
    accounts,
    api_keys,
    refresh_tokens,
)
from orderflow.domain.identity import ADMIN
from orderflow.ports.accounts import Account, EmailTakenError, LastAdminError

_CHANGES_ROW = account_changes.c.id == 1


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

    async def changes(self) -> int:
        async with self._engine.connect() as conn:
            query = select(account_changes.c.counter).where(_CHANGES_ROW)
            return int((await conn.execute(query)).scalar_one())

    async def set_disabled(self, account_id: str, disabled: bool) -> Account | None:
        async with self._engine.begin() as conn:
            await _count_change(conn)
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
            await _count_change(conn)
            # Refresh tokens go with the row (ON DELETE CASCADE too).
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


async def _count_change(conn: AsyncConnection) -> None:
    """Move the change counter: the first statement of every account change. Its row lock (on
    SQLite, the write lock it takes) also queues the changes one behind the other to the commit,
    so two admins disabling each other at once cannot both pass the last-admin check."""
    bump = update(account_changes).where(_CHANGES_ROW).values(counter=account_changes.c.counter + 1)
    await conn.execute(bump)


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
