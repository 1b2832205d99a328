"""Broker engines behind the Broker port, chosen by URL scheme."""

from orderflow.adapters.broker.factory import broker_from_url
from orderflow.adapters.broker.settings import BrokerSettings

__all__ = ["BrokerSettings", "broker_from_url"]
