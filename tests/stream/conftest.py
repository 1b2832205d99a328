"""Deployments the stream tests run against, each reached only through its gateway(s).

embedded: `orderflow run` (SQLite, the embedded broker). nats / rabbitmq: PostgreSQL and the
broker, every service started alone, with TWO stream processes each behind its own gateway, so
a change must cross processes through the broker to reach both.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from orderflow.adapters.identity.assertions import HEADER, AssertionSigner, ensure_signing_key
from orderflow.domain.identity import Identity
from tests.distributed.cluster import Cluster, broker_url
from tests.support.databases import fresh_database
from tests.support.system import System, free_port

ADMIN = ("stream-admin@example.com", "admin password 123")
# Many shoppers sign up from one address in these tests; cheaper hashes keep them quick.
GATEWAY_ENV = {
    "ORDERFLOW_GATEWAY_REGISTER_IP_LIMIT": "100000",
    "ORDERFLOW_GATEWAY_LOGIN_IP_LIMIT": "100000",
    "ORDERFLOW_GATEWAY_ARGON2_MEMORY_COST": "8192",
    "ORDERFLOW_GATEWAY_ARGON2_TIME_COST": "1",
    "ORDERFLOW_LOG_LEVEL": "WARNING",
}


@dataclass
class Deployment:
    shape: str
    gateways: list[str]  # public URLs; each fronts its own stream process
    streams: list[str]  # the stream processes' own URLs (tests only read /readyz there)
    keys_dir: Path  # the gateway's identity keys, for the one test that bypasses it

    def assertion(self, who: Identity) -> dict[str, str]:
        """Headers as the gateway sends them upstream (signed identity assertion)."""
        signer = AssertionSigner(ensure_signing_key(self.keys_dir), ttl=3600)
        return {HEADER: signer.sign(who)}

    @property
    def public(self) -> str:
        return self.gateways[0]


def _admin(env: dict[str, str]) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "orderflow",
            "admin",
            "create",
            "--email",
            ADMIN[0],
            "--password",
            ADMIN[1],
        ],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready")


@pytest.fixture(scope="module", params=["embedded", "nats", "rabbitmq"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp(f"stream-{request.param}")
    if request.param == "embedded":
        yield from _embedded(root)
    else:
        yield from _distributed(root, request.param)


def _embedded(root: Path) -> Iterator[Deployment]:
    stream_port = free_port()
    env = {**GATEWAY_ENV, "ORDERFLOW_STREAM_PORT": str(stream_port)}
    system = System(root / "data", env=env)
    system.start()
    try:
        stream = f"http://127.0.0.1:{stream_port}"
        wait_ready(stream)
        _admin({"ORDERFLOW_DATA_DIR": str(root / "data")})
        yield Deployment("embedded", [system.public_url], [stream], root / "data" / "keys")
    finally:
        system.stop()


def _distributed(root: Path, engine: str) -> Iterator[Deployment]:
    url = broker_url(engine)
    with fresh_database("postgresql", root) as database_url:
        cluster = Cluster(root / "cluster", database_url, url, env=dict(GATEWAY_ENV))
        cluster.prepare()
        ports = [free_port(), free_port()]
        gateway_db = f"sqlite+aiosqlite:///{root / 'gateway.db'}"
        cluster.env = {**cluster.env, "ORDERFLOW_GATEWAY_DATABASE_URL": gateway_db}
        processes: dict[str, tuple[str, ...]] = {
            "api": ("serve", "api"),
            "workers": ("worker", "all"),
            "stream-1": ("serve", "stream"),
            "stream-2": ("serve", "stream"),
        }
        try:
            cluster.start(processes)
            _admin({"ORDERFLOW_DATA_DIR": str(root / "cluster"), **cluster.environment()})
            streams = [cluster.procs[f"stream-{i}"].url for i in (1, 2)]
            for stream in streams:
                wait_ready(stream, 90)
            gateways = {}
            for i, (port, stream) in enumerate(zip(ports, streams, strict=True), 1):
                gateways[f"gateway-{i}"] = System(
                    root / f"gateway-{i}",
                    args=("serve", "gateway"),
                    port=port,
                    env={
                        **cluster.environment(),
                        "ORDERFLOW_GATEWAY_API_UPSTREAM": cluster.api_url,
                        "ORDERFLOW_GATEWAY_STREAM_UPSTREAM": stream,
                    },
                )
            for name, gateway in gateways.items():
                gateway.start(60)
                cluster.procs[name] = gateway
            yield Deployment(
                engine, [g.public_url for g in gateways.values()], streams, cluster.keys_dir
            )
        finally:
            cluster.stop_all()
            asyncio.run(cluster.destroy_broker_objects())
