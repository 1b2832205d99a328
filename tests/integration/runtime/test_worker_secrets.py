"""A worker whose broker or database URL carries a password, and which cannot reach it: the
password shows neither in its unauthenticated /readyz nor in its logs, and SIGTERM still stops
it at once while it waits."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.system import System

SECRET = "s3cret"  # the password that must never show

UNREACHABLE = [  # nothing listens on port 1
    pytest.param("ORDERFLOW_BROKER_URL", f"amqp://u:{SECRET}@127.0.0.1:1/", "broker", id="amqp"),
    pytest.param("ORDERFLOW_BROKER_URL", f"nats://u:{SECRET}@127.0.0.1:1", "broker", id="nats"),
    pytest.param(
        "ORDERFLOW_DATABASE_URL",
        f"postgresql+asyncpg://root:{SECRET}@127.0.0.1:1/orderflow",
        "database",
        id="postgresql",
    ),
]


@pytest.mark.parametrize(("variable", "url", "check"), UNREACHABLE)
def test_an_unreachable_dependency_is_named_without_its_password(
    tmp_path: Path, variable: str, url: str, check: str
) -> None:
    worker = System(
        tmp_path / "data",
        args=("worker", "all"),
        env={variable: url, "ORDERFLOW_LOG_LEVEL": "INFO", "ORDERFLOW_LOG_JSON": "true"},
    )
    worker.start(timeout=30)
    try:
        ready = httpx.get(f"{worker.url}/readyz", timeout=10)
        _wait_for_log(worker, "not ready")
        _wait_for_log(worker, "unreachable; retrying" if check == "database" else "broker")
        started = time.monotonic()
    finally:
        code = worker.stop(timeout=15)
    stopped_in = time.monotonic() - started

    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["failed"] == [check]
    assert ready.json()["status"] == 503
    assert SECRET not in ready.text
    logs = worker.logs_all()
    assert SECRET not in logs, logs[-3000:]
    assert code == 0, logs[-3000:]
    assert stopped_in < 10, logs[-3000:]


def _wait_for_log(worker: System, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in worker.logs_all():
        assert time.monotonic() < deadline, f"no {text!r} in:\n{worker.logs()}"
        time.sleep(0.1)
