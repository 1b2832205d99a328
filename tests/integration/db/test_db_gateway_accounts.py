"""The gateway's account store on each engine: disabling ends the account's refresh tokens,
deleting revokes the API keys it created, and two admins disabling each other at the same
moment cannot leave the gateway without an enabled admin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from orderflow.adapters.gateway_db import database
from orderflow.adapters.gateway_db.accounts import SqlAccounts
from orderflow.adapters.gateway_db.api_keys import SqlApiKeys
from orderflow.adapters.gateway_db.refresh_tokens import SqlRefreshTokens
from orderflow.domain.identity import ADMIN, CUSTOMER
from orderflow.ports.accounts import LastAdminError, RefreshTokenError


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    made = database.create_engine(database_url)
    await database.migrate(made)
    try:
        yield made
    finally:
        await made.dispose()


async def test_disable_ends_sessions_and_delete_revokes_keys(engine: AsyncEngine) -> None:
    accounts, tokens = SqlAccounts(engine), SqlRefreshTokens(engine, 3600)
    keys = SqlApiKeys(engine, cache_seconds=0)
    await accounts.create("root@example.com", "R", "h", frozenset({ADMIN}))
    ann = await accounts.create("ann@example.com", "A", "h", frozenset({CUSTOMER}))
    session = await tokens.start_family(ann.id)

    disabled = await accounts.set_disabled(ann.id, True)
    assert disabled is not None
    assert disabled.disabled
    with pytest.raises(RefreshTokenError):
        await tokens.rotate(session)
    enabled = await accounts.set_disabled(ann.id, False)
    assert enabled is not None
    assert not enabled.disabled
    assert await accounts.set_disabled("no-such-id", True) is None

    helper = await accounts.create("helper@example.com", "H", "h", frozenset({ADMIN}))
    _, secret = await keys.create("sync", frozenset({"orders:read"}), helper.id)
    assert await keys.authenticate(secret) is not None
    assert await accounts.delete(helper.id)
    assert await accounts.by_id(helper.id) is None
    assert await keys.authenticate(secret) is None
    assert not await accounts.delete(helper.id)


async def test_the_last_enabled_admin_cannot_go(engine: AsyncEngine) -> None:
    accounts = SqlAccounts(engine)
    await accounts.create("c@example.com", "C", "h", frozenset({CUSTOMER}))
    survivor = await accounts.create("first@example.com", "F", "h", frozenset({ADMIN}))
    # Rounds, because a race shows only sometimes: two new admins, the old survivor disabled,
    # then the two disable each other at the same moment (two connections): exactly one may.
    for round_ in range(15):
        pair = [
            await accounts.create(f"{side}{round_}@example.com", "A", "h", frozenset({ADMIN}))
            for side in ("a", "b")
        ]
        assert await accounts.set_disabled(survivor.id, True) is not None
        results = await asyncio.gather(
            *(accounts.set_disabled(admin.id, True) for admin in pair), return_exceptions=True
        )
        refused = [isinstance(r, LastAdminError) for r in results]
        assert sorted(refused) == [False, True], results
        survivor = pair[refused.index(True)]
    with pytest.raises(LastAdminError):
        await accounts.delete(survivor.id)
    with pytest.raises(LastAdminError):
        await accounts.set_disabled(survivor.id, True)
    after = await accounts.by_id(survivor.id)
    assert after is not None
    assert not after.disabled
