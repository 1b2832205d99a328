"""The RabbitMQ broker engine (install with `pip install 'orderflow[rabbitmq]'`)."""

from orderflow.adapters.broker.rabbitmq.broker import RabbitMqBroker
from orderflow.adapters.broker.rabbitmq.consumer import RabbitMqConsumer

__all__ = ["RabbitMqBroker", "RabbitMqConsumer"]
