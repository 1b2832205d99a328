"""Prometheus metrics of `orderflow run`, scraped from each process after a run of known orders:
the API counts what it accepted, the workers how the orders finished and what was dead-lettered,
the stream its open connections, the gateway (admins only) its requests; the histograms have
observations."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from orderflow.adapters.identity.assertions import HEADER
from tests.support.known_orders import (
    ACCEPTED,
    DEAD_LETTERS,
    FINISHED,
    MAX_ATTEMPTS_ENV,
    REACHED,
    run_known_orders,
)
from tests.support.metrics import Scrape, scrape
from tests.support.orders import Client
from tests.support.system import System, customer, free_port

ADMIN = ("metrics-admin@example.com", "metrics admin password")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One deployment for the module: only the first test places orders, only the last logs in."""
    env = {
        **MAX_ATTEMPTS_ENV,
        "ORDERFLOW_STREAM_PORT": str(free_port()),
        "ORDERFLOW_WORKERS_PORT": str(free_port()),
        "ORDERFLOW_GATEWAY_ARGON2_MEMORY_COST": "8192",
        "ORDERFLOW_GATEWAY_ARGON2_TIME_COST": "1",
    }
    made = System(tmp_path_factory.mktemp("metrics") / "data", env=env)
    made.start()
    yield made
    if made.proc and made.proc.poll() is None:
        made.stop()


def _port(system: System, name: str) -> str:
    return f"http://127.0.0.1:{system.env[name]}"


def _admin_token(system: System) -> str:
    create = ("admin", "create", "--email", ADMIN[0], "--password", ADMIN[1])
    subprocess.run(
        [sys.executable, "-m", "orderflow", *create],
        env={**os.environ, "ORDERFLOW_DATA_DIR": str(system.data_dir), **system.env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    login = {"username": ADMIN[0], "password": ADMIN[1]}
    answer = httpx.post(f"{system.public_url}/auth/token", data=login, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


async def test_each_process_counts_the_known_orders(system: System) -> None:
    client = Client(system.url, system.signer())
    try:
        await run_known_orders(client)
    finally:
        await client.aclose()

    api = scrape(system.url)
    assert api.value("orderflow_orders_accepted_total") == ACCEPTED
    posts = api.value("orderflow_http_request_seconds_count", route="/api/v1/orders", method="POST")
    assert posts == ACCEPTED
    assert api.value("orderflow_http_request_seconds_count", status="202") == ACCEPTED

    workers = scrape(_port(system, "ORDERFLOW_WORKERS_PORT"))
    assert _finished(workers) == dict(FINISHED)
    assert workers.value("orderflow_dead_letters_total") == DEAD_LETTERS
    assert workers.value("orderflow_dead_letters_total", group="payment") == DEAD_LETTERS
    for status, count in REACHED.items():
        assert workers.value("orderflow_order_stage_seconds_count", status=status) == count
        assert workers.value("orderflow_order_stage_seconds_sum", status=status) > 0
    for group in ("orders", "inventory", "payment"):
        assert workers.value("orderflow_handler_batch_seconds_count", group=group) > 0
        assert workers.has("orderflow_queue_backlog", group=group)  # sampled at the scrape
    calls = "orderflow_provider_call_seconds_count"
    assert workers.value(calls, operation="authorize", outcome="transient_error") == 2 * 2
    assert workers.value(calls, operation="capture", outcome="approved") == FINISHED["confirmed"]
    # Sampled at the scrape: all published (here by the outbox trigger at commit, not the relay,
    # since the database and the embedded broker share one file).
    assert workers.value("orderflow_outbox_depth") == 0


async def test_the_stream_counts_its_connections(system: System) -> None:
    stream = _port(system, "ORDERFLOW_STREAM_PORT")
    headers = {HEADER: system.signer().sign(customer("watcher@example.com"))}
    gauge = "orderflow_stream_connections"
    assert scrape(stream).value(gauge, transport="sse") == 0
    ready = await asyncio.to_thread(httpx.get, f"{stream}/readyz", timeout=10)
    assert ready.status_code == 200
    readyz = scrape(stream).value("orderflow_http_request_seconds_count", route="/readyz")
    assert readyz >= 1  # requests counted by route template there too
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream("GET", f"{stream}/events", headers=headers) as events,
    ):
        assert events.status_code == 200
        lines = events.aiter_lines()
        while not (await anext(lines)).startswith("event: subscribed"):
            pass
        scraped = await asyncio.to_thread(scrape, stream)
        assert scraped.value(gauge, transport="sse") == 1


def test_the_gateway_shows_its_metrics_to_an_admin_only(system: System) -> None:
    assert httpx.get(f"{system.public_url}/metrics").status_code == 404
    token = _admin_token(system)
    gateway = scrape(system.public_url, {"Authorization": f"Bearer {token}"})
    logins = gateway.value(
        "orderflow_http_request_seconds_count", route="/auth/token", status="200"
    )
    assert logins == 1
    assert gateway.value("orderflow_http_request_seconds_count", route="/metrics") >= 1


def _finished(scraped: Scrape) -> dict[str, float]:
    return {
        labels["status"]: value
        for name, labels, value in scraped.samples
        if name == "orderflow_orders_finished_total"
    }
