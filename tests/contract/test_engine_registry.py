"""Engines register themselves by URL scheme (entry points of `orderflow.brokers`): how the
registry finds them, what a missing extra or an unknown scheme says, and that engines never show
the password of their URL."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from orderflow.adapters.broker import broker_from_url
from orderflow.adapters.broker.factory import ENGINES
from orderflow.ports.broker import OutgoingMessage


def run_python(code: str, *, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter, so hiding a library or adding an engine stays there."""
    env = {"PYTHONPATH": str(path)} if path is not None else None
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_every_engine_of_this_repository_is_registered() -> None:
    registered = {ep.name: ep.value for ep in entry_points(group=ENGINES)}

    assert {"embedded", "nats", "tls", "amqp", "amqps"} <= set(registered)
    assert all(value.endswith(".engine:from_url") for value in registered.values())


def test_an_unknown_scheme_names_the_known_ones_but_not_the_password() -> None:
    with pytest.raises(ValueError, match="unknown broker URL scheme 'kafka'") as raised:
        broker_from_url("kafka://user:s3cret@localhost:9092")

    assert "embedded" in str(raised.value)
    assert "amqp" in str(raised.value)
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "library", "extra"),
    [("nats://127.0.0.1:4222", "nats", "nats"), ("amqp://127.0.0.1/", "aio_pika", "rabbitmq")],
)
def test_a_missing_extra_names_the_install_command(url: str, library: str, extra: str) -> None:
    result = run_python(f"""
        import sys
        sys.modules[{library!r}] = None  # as if the extra were not installed
        from orderflow.adapters.broker import broker_from_url
        try:
            broker_from_url({url!r})
        except ImportError as exc:
            print(exc)
        """)

    assert result.returncode == 0, result.stderr
    assert f"pip install 'orderflow[{extra}]'" in result.stdout


def test_another_package_adds_an_engine_by_an_entry_point_alone(tmp_path: Path) -> None:
    """Nothing of orderflow is edited: the engine is a module and an entry point."""
    (tmp_path / "memory_engine.py").write_text(
        textwrap.dedent("""
        from orderflow.adapters.broker.embedded.broker import EmbeddedBroker

        def from_url(url, settings):
            return EmbeddedBroker(f"/tmp/{settings.prefix}.db")
        """)
    )
    info = tmp_path / "memory_engine-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: memory-engine\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[orderflow.brokers]\nmemory = memory_engine:from_url\n")

    result = run_python(
        """
        from orderflow.adapters.broker import BrokerSettings, broker_from_url
        broker = broker_from_url("memory://", BrokerSettings("plugged"))
        print(type(broker).__name__, broker.path)
        """,
        path=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["EmbeddedBroker", "/tmp/plugged.db"]


@pytest.mark.parametrize(
    "url",
    ["nats://u:s3cret@127.0.0.1:1", "tls://s3cret@127.0.0.1:1", "amqp://u:s3cret@127.0.0.1:1/"],
)
async def test_broker_errors_and_logs_never_show_the_password(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on port 1: every call fails, and says where without the password."""
    caplog.set_level(logging.DEBUG)
    broker = broker_from_url(url)
    errors: list[BaseException] = []
    message = OutgoingMessage("orders.placed", "order-1", "msg-1", b"{}")
    try:
        for call in (broker.ping, lambda: broker.publish([message])):
            with pytest.raises(ConnectionError) as raised:
                await call()
            errors.append(raised.value)
    finally:
        await broker.close()

    shown = [str(e) for e in errors] + [repr(broker), caplog.text]
    assert all("127.0.0.1:1" in text for text in shown[:-1]), shown
    assert not any("s3cret" in text for text in shown), shown
