"""The NATS JetStream broker engine (install with `pip install 'orderflow[nats]'`)."""

from orderflow.adapters.broker.nats.broker import NatsBroker
from orderflow.adapters.broker.nats.consumer import NatsConsumer

__all__ = ["NatsBroker", "NatsConsumer"]
