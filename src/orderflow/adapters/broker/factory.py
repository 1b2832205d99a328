"""Build the Broker engine a URL names; optional engines are imported only when asked for."""

from __future__ import annotations

from urllib.parse import urlsplit

from orderflow.ports.broker import Broker


def broker_from_url(url: str, prefix: str, partitions: int | None = None) -> Broker:
    """`embedded:///path`, `nats://` / `tls://`, or `amqp://` / `amqps://`.

    The prefix namespaces topics on shared servers; a broker file is already private, so the
    embedded engine ignores it. `partitions` (shards per topic) is the networked engines' own
    default when None; the embedded engine orders per key without shards and ignores it.
    """
    shards = {} if partitions is None else {"partitions": partitions}
    scheme = urlsplit(url).scheme.lower()
    if scheme == "embedded":
        from orderflow.adapters.broker.embedded.broker import EmbeddedBroker

        return EmbeddedBroker.from_url(url)
    if scheme in ("nats", "tls"):
        try:
            import nats  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "the NATS broker needs nats-py: pip install 'orderflow[nats]'"
            ) from exc
        from orderflow.adapters.broker.nats.broker import NatsBroker

        return NatsBroker(url, prefix, **shards)
    if scheme in ("amqp", "amqps"):
        try:
            import aio_pika  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "the RabbitMQ broker needs aio-pika: pip install 'orderflow[rabbitmq]'"
            ) from exc
        from orderflow.adapters.broker.rabbitmq.broker import RabbitMqBroker

        return RabbitMqBroker(url, prefix, **shards)
    raise ValueError(
        f"unknown broker URL scheme {scheme!r} in {url!r}: expected embedded:///path/broker.db,"
        " nats:// (or tls://) or amqp:// (or amqps://)"
    )
