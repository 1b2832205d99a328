"""The embedded broker engine (SQLite), the default."""

from orderflow.adapters.broker.embedded.broker import EmbeddedBroker
from orderflow.adapters.broker.embedded.consumer import EmbeddedConsumer

__all__ = ["EmbeddedBroker", "EmbeddedConsumer"]
