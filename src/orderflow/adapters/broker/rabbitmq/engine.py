"""The RabbitMQ engine as the broker registry builds it (`amqp://` or `amqps://`)."""

from __future__ import annotations

from orderflow.adapters.broker.rabbitmq.broker import RabbitMqBroker
from orderflow.adapters.broker.settings import BrokerSettings


def from_url(url: str, settings: BrokerSettings) -> RabbitMqBroker:
    if settings.partitions is None:
        return RabbitMqBroker(url, settings.prefix)
    return RabbitMqBroker(url, settings.prefix, partitions=settings.partitions)
