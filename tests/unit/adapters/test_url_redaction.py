"""URLs shown in errors and logs carry no credentials."""

from __future__ import annotations

import pytest

from orderflow.adapters.urls import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:s3cret@127.0.0.1:5672/vhost", "amqp://***@127.0.0.1:5672/vhost"),
        ("nats://u:s3cret@127.0.0.1:4222", "nats://***@127.0.0.1:4222"),
        ("nats://s3cret@127.0.0.1:4222", "nats://***@127.0.0.1:4222"),  # a token
        ("tls://u:p%40s3cret@nats.example:4222", "tls://***@nats.example:4222"),
        (
            "postgresql+asyncpg://root:s3cret@127.0.0.1:5432/orderflow",
            "postgresql+asyncpg://***@127.0.0.1:5432/orderflow",
        ),
        (
            "postgresql+asyncpg://127.0.0.1/db?user=me&password=s3cret&ssl=on",
            "postgresql+asyncpg://127.0.0.1/db?user=me&password=***&ssl=on",
        ),
        ("amqps://h/?auth_token=s3cret", "amqps://h/?auth_token=***"),
    ],
)
def test_credentials_are_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "embedded:////var/lib/orderflow/broker.db",
        "embedded:///tmp/broker.db?synchronous=normal",
        "sqlite+aiosqlite:///var/orderflow.db",
        "nats://127.0.0.1:4222",
        "amqp://127.0.0.1/",
    ],
)
def test_urls_without_credentials_are_unchanged(url: str) -> None:
    assert redact_url(url) == url


def test_an_unreadable_url_is_not_shown() -> None:
    assert "s3cret" not in redact_url("amqp://u:s3cret@[::1")
