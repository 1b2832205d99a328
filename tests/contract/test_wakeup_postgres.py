"""LISTEN/NOTIFY wake-ups against the real PostgreSQL server: the wake-up contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orderflow.ports.wakeup import Wakeup
from tests.contract.wakeup_contract import WakeupContract, WakeupFactory
from tests.support.databases import PG_USER
from tests.support.services import require_service

pytestmark = pytest.mark.requires_postgres


def _url() -> str:
    service = require_service("postgres")
    # Channels are per database and random per test, so the maintenance database will do.
    return f"postgresql+asyncpg://{PG_USER}@{service.host}:{service.port}/postgres"


class TestPostgresWakeup(WakeupContract):
    @pytest.fixture
    def child_factory(self) -> str:
        return f"PostgresWakeup({_url()!r})"

    @pytest.fixture
    async def make_wakeup(self) -> AsyncIterator[WakeupFactory]:
        from orderflow.adapters.wakeup import PostgresWakeup

        made: list[PostgresWakeup] = []

        async def make() -> Wakeup:
            made.append(PostgresWakeup(_url()))
            return made[-1]

        yield make
        for wakeup in made:
            await wakeup.close()
