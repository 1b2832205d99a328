"""Prometheus metrics in the distributed shape: PostgreSQL + NATS JetStream or RabbitMQ, the API,
the relay, two instances of every worker, a stream and a gateway, each its own process scraped on
its own port (a worker's and the relay's health port). After a run of known orders the counts,
added up over the instances as PromQL's sum() would, are exactly the orders' outcomes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from orderflow.bootstrap import WORKERS
from tests.distributed.cluster import Cluster, broker_url
from tests.support.databases import fresh_database
from tests.support.known_orders import (
    ACCEPTED,
    DEAD_LETTERS,
    FINISHED,
    MAX_ATTEMPTS_ENV,
    REACHED,
    run_known_orders,
)
from tests.support.metrics import scrape, scrape_all
from tests.support.orders import Client
from tests.support.system import System

pytestmark = [pytest.mark.requires_postgres, pytest.mark.timeout(600)]

ADMIN = ("metrics-admin@example.com", "metrics admin password")
GATEWAY_ENV = {
    "ORDERFLOW_GATEWAY_ARGON2_MEMORY_COST": "8192",
    "ORDERFLOW_GATEWAY_ARGON2_TIME_COST": "1",
}


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture(params=["nats", "rabbitmq"])
async def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[Cluster]:
    gateway_db = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    env = {**MAX_ATTEMPTS_ENV, **GATEWAY_ENV, "ORDERFLOW_GATEWAY_DATABASE_URL": gateway_db}
    made = Cluster(tmp_path / "cluster", database_url, broker_url(request.param), env=env)
    await asyncio.to_thread(made.prepare)
    try:
        yield made
    finally:
        await asyncio.to_thread(made.stop_all)
        await made.destroy_broker_objects()


def _start(cluster: Cluster) -> None:
    processes: dict[str, tuple[str, ...]] = {
        "api": ("serve", "api"),
        "relay": ("relay",),
        "stream": ("serve", "stream"),
    }
    for worker in WORKERS:
        for i in (1, 2):
            processes[f"{worker}-{i}"] = ("worker", worker)
    cluster.start(processes)
    gateway = System(
        cluster.root / "gateway",
        args=("serve", "gateway"),
        env={
            **cluster.environment(),
            "ORDERFLOW_GATEWAY_API_UPSTREAM": cluster.api_url,
            "ORDERFLOW_GATEWAY_STREAM_UPSTREAM": cluster.procs["stream"].url,
        },
    )
    gateway.start(60)
    cluster.procs["gateway"] = gateway
    create = ("admin", "create", "--email", ADMIN[0], "--password", ADMIN[1])
    subprocess.run(
        [sys.executable, "-m", "orderflow", *create],
        env={**os.environ, "ORDERFLOW_DATA_DIR": str(cluster.root), **cluster.environment()},
        check=True,
        capture_output=True,
        timeout=60,
    )


def _urls(cluster: Cluster, group: str) -> list[str]:
    return [cluster.procs[f"{group}-{i}"].url for i in (1, 2)]


async def test_each_process_is_scraped_and_the_counts_add_up(cluster: Cluster) -> None:
    await asyncio.to_thread(_start, cluster)
    client = Client(cluster.api_url, cluster.signer())
    try:
        await run_known_orders(client)
    finally:
        await client.aclose()
    await asyncio.to_thread(_check_scrapes, cluster)


def _check_scrapes(cluster: Cluster) -> None:
    api = scrape(cluster.api_url)
    assert api.value("orderflow_orders_accepted_total") == ACCEPTED
    count = "orderflow_http_request_seconds_count"
    assert api.value(count, route="/api/v1/orders", method="POST", status="202") == ACCEPTED

    orders = scrape_all(_urls(cluster, "orders"))
    for status, n in FINISHED.items():
        assert orders.value("orderflow_orders_finished_total", status=status) == n
    for status, n in REACHED.items():
        assert orders.value("orderflow_order_stage_seconds_count", status=status) == n
        assert orders.value("orderflow_order_stage_seconds_sum", status=status) > 0

    payment = scrape_all(_urls(cluster, "payment"))
    inventory = scrape_all(_urls(cluster, "inventory"))
    relay = scrape(cluster.procs["relay"].url)
    everyone = orders + payment + inventory + relay
    assert everyone.value("orderflow_dead_letters_total") == DEAD_LETTERS
    assert payment.value("orderflow_dead_letters_total", group="payment") == DEAD_LETTERS
    calls = "orderflow_provider_call_seconds_count"
    assert payment.value(calls, operation="capture", outcome="approved") == FINISHED["confirmed"]
    for group, scraped in (("orders", orders), ("payment", payment), ("inventory", inventory)):
        assert scraped.value("orderflow_handler_batch_seconds_count", group=group) > 0
    assert relay.value("orderflow_relay_published_messages_total") > 0
    assert relay.has("orderflow_outbox_depth")
    for group in WORKERS:  # sampled at the scrape, where the relay runs
        assert relay.has("orderflow_queue_backlog", group=group)

    stream = scrape(cluster.procs["stream"].url)
    assert stream.value("orderflow_stream_connections") == 0

    public = cluster.procs["gateway"].public_url
    assert httpx.get(f"{public}/metrics").status_code == 404
    login = {"username": ADMIN[0], "password": ADMIN[1]}
    token = httpx.post(f"{public}/auth/token", data=login, timeout=30).json()["access_token"]
    gateway = scrape(public, {"Authorization": f"Bearer {token}"})
    assert gateway.value(count, route="/auth/token", method="POST", status="200") == 1
