"""The external servers tests use for real, and what to do when one is down.

`require_service(name)` returns quietly when the server's port answers. When it does not: in CI
(`CI=true`) it starts the server with the machine's own command, waits a bounded time and fails
the test loudly if the server still does not answer, because CI must never skip these tests;
on a developer machine it skips the test, saying which server is missing and how to start it.
"""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest


@dataclass(frozen=True, slots=True)
class Service:
    host: str
    port: int
    start: tuple[str, ...]
    startup: float  # seconds to wait after starting it


def _postgres_start() -> tuple[str, ...]:
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    version = versions[-1] if versions else "15"
    return ("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start")


NATS_START = (
    *("start-stop-daemon", "--start", "--oknodo", "--background"),
    *("--exec", "/usr/sbin/nats-server"),
    *("--", "-a", "127.0.0.1", "-p", "4222", "-js"),
    *("-sd", "/var/lib/nats-server", "-l", "/var/log/nats-server.log"),
)

REDIS_START = (
    *("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379"),
    *("--save", "", "--appendonly", "no"),
)

SERVICES: dict[str, Service] = {
    "postgres": Service("127.0.0.1", 5432, (), 30.0),
    "nats": Service("127.0.0.1", 4222, NATS_START, 20.0),
    "rabbitmq": Service("127.0.0.1", 5672, ("rabbitmq-server", "-detached"), 90.0),
    "redis": Service("127.0.0.1", 6379, REDIS_START, 20.0),
}


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_service(name: str) -> Service:
    """Make sure the named server answers (see the module docstring); return where it is."""
    service = SERVICES[name]
    if port_open(service.host, service.port):
        return service
    if not in_ci():
        pytest.skip(
            f"{name} is not running on {service.host}:{service.port}"
            " (start it, or run with CI=true to have the tests start it)"
        )
    command = service.start or _postgres_start()
    try:
        result = subprocess.run(command, capture_output=True, timeout=service.startup, check=False)
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        output = repr(exc)
    deadline = time.monotonic() + service.startup
    while time.monotonic() < deadline:
        if port_open(service.host, service.port):
            return service
        time.sleep(0.25)
    pytest.fail(
        f"{name} is down on {service.host}:{service.port} and did not come up within"
        f" {service.startup:.0f}s of `{' '.join(command)}`: {output}",
        pytrace=False,
    )
