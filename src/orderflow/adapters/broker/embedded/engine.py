"""The embedded engine as the broker registry builds it (`embedded:///absolute/path.db`)."""

from __future__ import annotations

from orderflow.adapters.broker.embedded.broker import EmbeddedBroker
from orderflow.adapters.broker.settings import BrokerSettings


def from_url(url: str, settings: BrokerSettings) -> EmbeddedBroker:
    # A broker file is private to one deployment and orders per key without shards, so the
    # prefix and the partitions do not apply.
    return EmbeddedBroker.from_url(url)
