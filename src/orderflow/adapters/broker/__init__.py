"""Broker engines behind the Broker port, chosen by URL scheme."""

from orderflow.adapters.broker.factory import broker_from_url

__all__ = ["broker_from_url"]
