"""The distributed shape end to end: PostgreSQL + NATS JetStream or RabbitMQ, the API, two
instances of every worker and a relay as separate OS processes, over real HTTP.

Per broker: 1,000 mixed orders through two instances of every worker, the same with one instance of
each worker killed mid-run (about 40 s each), and a broker restart under 200 orders.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.distributed.cluster import Cluster, broker_url
from tests.support.databases import database_outage, fresh_database
from tests.support.orders import Client, Planned, mixed_orders
from tests.support.services import NATS_START
from tests.support.system import System

pytestmark = [pytest.mark.requires_postgres, pytest.mark.timeout(600)]

ENGINES = ["nats", "rabbitmq"]


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture(params=ENGINES)
async def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[Cluster]:
    made = Cluster(tmp_path / "cluster", database_url, broker_url(request.param))
    await asyncio.to_thread(made.prepare)
    try:
        yield made
    finally:
        codes = await asyncio.to_thread(made.stop_all)
        await made.destroy_broker_objects()
    # Graceful exits; uvicorn re-raises the SIGTERM it handled once it has shut down.
    graceful = {name: code in (0, -signal.SIGTERM) for name, code in codes.items()}
    assert all(graceful.values()), (codes, made.logs())


class Submission:
    """Orders submitted concurrently; `accepted` grows as 202s come back."""

    def __init__(self, client: Client, planned: list[Planned]) -> None:
        self.client = client
        self.planned = planned
        self.accepted: dict[str, Planned] = {}
        self._progress = asyncio.Condition()

    async def _place(self, p: Planned) -> None:
        response = await self.client.place(p)
        assert response.status_code == 202, response.text
        async with self._progress:
            self.accepted[response.json()["id"]] = p
            self._progress.notify_all()

    def start(self) -> asyncio.Future[list[None]]:
        self._submitting = asyncio.gather(*(self._place(p) for p in self.planned))
        return self._submitting

    async def reached(self, n: int) -> None:
        """Wait for n acceptances; a submission that failed first raises here instead of leaving
        the test waiting forever for acceptances that will never come."""

        async def counted() -> None:
            async with self._progress:
                await self._progress.wait_for(lambda: len(self.accepted) >= n)

        waiting = asyncio.ensure_future(counted())
        await asyncio.wait({waiting, self._submitting}, return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            waiting.cancel()
            self._submitting.result()  # the failure; or all were placed with fewer than n accepted
            raise AssertionError(f"only {len(self.accepted)} of {n} orders were accepted")


async def _run_orders(cluster: Cluster, n: int, seed: int) -> None:
    client = Client(cluster.api_url, cluster.signer(), concurrency=64)
    try:
        submission = Submission(client, mixed_orders(n, random.Random(seed)))
        await submission.start()
        final = await client.wait_settled(
            {oid: p.who for oid, p in submission.accepted.items()}, timeout=240
        )
    finally:
        await client.aclose()
    await cluster.check_outcome(submission.accepted, final)


async def test_every_service_scaled_out_settles_1000_orders(cluster: Cluster) -> None:
    await asyncio.to_thread(cluster.start_all, 2)
    assert all(cluster.ready(name).status_code == 200 for name in cluster.procs if name != "api")
    await _run_orders(cluster, 1000, seed=41)


async def test_kill_9_one_instance_of_each_worker_mid_run(cluster: Cluster) -> None:
    await asyncio.to_thread(cluster.start_all, 2)
    client = Client(cluster.api_url, cluster.signer(), concurrency=64)
    try:
        submission = Submission(client, mixed_orders(1000, random.Random(47)))
        submitting = submission.start()
        await submission.reached(300)
        for name in ("orders-1", "inventory-1", "payment-1"):
            cluster.kill(name)  # mid-batch: their unsettled deliveries go to the survivors
        await submitting
        final = await client.wait_settled(
            {oid: p.who for oid, p in submission.accepted.items()}, timeout=240
        )
    finally:
        await client.aclose()
    await cluster.check_outcome(submission.accepted, final)


async def test_a_database_outage_mid_run_fails_no_order(cluster: Cluster) -> None:
    """PostgreSQL unreachable for 12 s while the workers have a backlog: they wait for it instead
    of spending their deliveries' attempts on it, so no order is dead-lettered into `failed`."""
    await asyncio.to_thread(cluster.start_all, 1)
    client = Client(cluster.api_url, cluster.signer(), concurrency=64)
    try:
        submission = Submission(client, mixed_orders(400, random.Random(61)))
        await submission.start()  # all accepted first: the API needs the database too
        await database_outage(cluster.database_url, seconds=12)
        final = await client.wait_settled(
            {oid: p.who for oid, p in submission.accepted.items()}, timeout=240
        )
    finally:
        await client.aclose()
    await cluster.check_outcome(submission.accepted, final)


def _restart_broker(engine: str) -> None:
    """Stop the shared server and start it again at once (others' tests see a blip too)."""
    if engine == "nats":
        stop = ("start-stop-daemon", "--stop", "--retry", "10", "--exec", "/usr/sbin/nats-server")
        subprocess.run(stop, check=True, capture_output=True, timeout=30)
        time.sleep(1.0)
        subprocess.run(NATS_START, check=True, capture_output=True, timeout=30)
    else:
        subprocess.run(("rabbitmqctl", "stop_app"), check=True, capture_output=True, timeout=60)
        subprocess.run(("rabbitmqctl", "start_app"), check=True, capture_output=True, timeout=90)


def _ensure_broker_up(engine: str) -> None:
    if engine == "nats":
        subprocess.run(NATS_START, check=False, capture_output=True, timeout=30)
    else:
        subprocess.run(("rabbitmqctl", "start_app"), check=False, capture_output=True, timeout=90)


async def _wait_ready(cluster: Cluster, name: str, want: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (answer := await asyncio.to_thread(cluster.ready, name)).status_code != want:
        assert time.monotonic() < deadline, f"{name} /readyz never answered {want}: {answer.text}"
        await asyncio.sleep(0.2)


# Runs by default (about 20 s per engine). It stops the shared server, so other runs against it
# see a blip; every engine must ride that out anyway.
async def test_broker_restart_mid_run_loses_no_accepted_order(
    cluster: Cluster, request: pytest.FixtureRequest
) -> None:
    engine = "nats" if cluster.broker_url.startswith("nats") else "rabbitmq"
    await asyncio.to_thread(cluster.start_all, 1)
    client = Client(cluster.api_url, cluster.signer(), concurrency=32)
    try:
        submission = Submission(client, mixed_orders(200, random.Random(53)))
        submitting = submission.start()
        await submission.reached(60)
        try:
            restart = asyncio.create_task(asyncio.to_thread(_restart_broker, engine))
            # The relay notices the outage (readiness fails) while the API keeps accepting.
            await _wait_ready(cluster, "relay", 503, timeout=30)
            await restart
        finally:
            await asyncio.to_thread(_ensure_broker_up, engine)
        await submitting
        await _wait_ready(cluster, "relay", 200, timeout=60)
        final = await client.wait_settled(
            {oid: p.who for oid, p in submission.accepted.items()}, timeout=240
        )
    finally:
        await client.aclose()
    assert len(submission.accepted) == 200
    await cluster.check_outcome(submission.accepted, final)


@pytest.mark.parametrize("engine", ENGINES)
async def test_orderflow_run_on_postgres_and_a_networked_broker(
    engine: str, tmp_path: Path, database_url: str
) -> None:
    """`orderflow run` with nothing but the two URLs changed."""
    url = broker_url(engine)
    helper = Cluster(tmp_path / "run", database_url, url)
    system = System(
        tmp_path / "run",
        args=("run", "--database-url", database_url, "--broker-url", url),
        env={"ORDERFLOW_BROKER_PREFIX": helper.prefix},
    )
    await asyncio.to_thread(system.start, 90.0)
    client = Client(system.url, system.signer())
    try:
        planned = mixed_orders(60, random.Random(59))
        responses = await asyncio.gather(*(client.place(p) for p in planned))
        assert {r.status_code for r in responses} == {202}
        accepted = {r.json()["id"]: p for r, p in zip(responses, planned, strict=True)}
        final = await client.wait_settled({oid: p.who for oid, p in accepted.items()})
    finally:
        await client.aclose()
        code = await asyncio.to_thread(system.stop)
        await helper.destroy_broker_objects()
    assert code == 0, system.logs()  # the supervisor stopped every child gracefully
    await helper.check_outcome(accepted, final)
