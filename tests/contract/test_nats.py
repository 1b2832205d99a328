"""The NATS JetStream engine against the real server: the broker contract."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.contract.broker_contract import BrokerContract, BrokerFactory
from tests.support.services import require_service

pytestmark = pytest.mark.requires_nats


@pytest.fixture
async def nats_factory() -> AsyncIterator[BrokerFactory]:
    from orderflow.adapters.broker import BrokerSettings, broker_from_url
    from orderflow.adapters.broker.nats import NatsBroker
    from orderflow.ports.broker import Broker

    service = require_service("nats")
    url = f"nats://{service.host}:{service.port}"
    # Unique per test: runs and tests never see each other's streams.
    prefix = f"test.{uuid.uuid4().hex[:12]}"
    made: list[NatsBroker] = []

    async def make(name: str = "main") -> Broker:
        # One prefix per test: every name reaches the same streams, like another process would.
        broker = broker_from_url(url, BrokerSettings(prefix))
        assert isinstance(broker, NatsBroker)  # the engine registered for the scheme
        await broker.connect()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()
    cleaner = NatsBroker(url, prefix)
    await cleaner.connect()
    await cleaner.destroy()
    await cleaner.close()


class TestNatsBroker(BrokerContract):
    @pytest.fixture
    def make_broker(self, nats_factory: BrokerFactory) -> BrokerFactory:
        return nats_factory
