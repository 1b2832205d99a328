"""The embedded (SQLite) engine: the broker contract, plus what only a file-based engine does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orderflow.adapters.broker.embedded import EmbeddedBroker
from orderflow.ports.broker import Broker
from tests.contract.broker_contract import BrokerContract, BrokerFactory


@pytest.fixture
async def embedded_factory(tmp_path: Path) -> AsyncIterator[BrokerFactory]:
    made: list[EmbeddedBroker] = []

    async def make(name: str = "main") -> Broker:
        broker = EmbeddedBroker(tmp_path / f"{name}.db")
        await broker.connect()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.close()


class TestEmbeddedBroker(BrokerContract):
    @pytest.fixture
    def make_broker(self, embedded_factory: BrokerFactory) -> BrokerFactory:
        return embedded_factory
