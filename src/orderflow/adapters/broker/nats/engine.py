"""The NATS engine as the broker registry builds it (`nats://` or `tls://`)."""

from __future__ import annotations

from orderflow.adapters.broker.nats.broker import NatsBroker
from orderflow.adapters.broker.settings import BrokerSettings


def from_url(url: str, settings: BrokerSettings) -> NatsBroker:
    if settings.partitions is None:
        return NatsBroker(url, settings.prefix)
    return NatsBroker(url, settings.prefix, partitions=settings.partitions)
