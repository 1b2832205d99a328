"""The RabbitMQ engine against the real server: the broker contract."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.contract.broker_contract import BrokerContract, BrokerFactory
from tests.support.services import require_service

pytestmark = pytest.mark.requires_rabbitmq


@pytest.fixture
async def rabbitmq_factory() -> AsyncIterator[BrokerFactory]:
    from orderflow.adapters.broker import BrokerSettings, broker_from_url
    from orderflow.adapters.broker.rabbitmq import RabbitMqBroker
    from orderflow.ports.broker import Broker

    service = require_service("rabbitmq")
    url = f"amqp://guest:guest@{service.host}:{service.port}/"
    # Unique per test: runs and tests never see each other's queues.
    prefix = f"test.{uuid.uuid4().hex[:12]}"
    made: list[RabbitMqBroker] = []

    async def make(name: str = "main") -> Broker:
        # One prefix per test: every name reaches the same queues, like another process would.
        broker = broker_from_url(url, BrokerSettings(prefix))
        assert isinstance(broker, RabbitMqBroker)  # the engine registered for the scheme
        await broker.connect()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()
    cleaner = RabbitMqBroker(url, prefix)
    await cleaner.connect()
    cleaner.groups.update(*(broker.groups for broker in made))
    await cleaner.destroy()
    await cleaner.close()


class TestRabbitMqBroker(BrokerContract):
    @pytest.fixture
    def make_broker(self, rabbitmq_factory: BrokerFactory) -> BrokerFactory:
        return rabbitmq_factory
