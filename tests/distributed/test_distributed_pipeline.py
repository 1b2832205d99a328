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
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orderflow.demo.catalog import PLENTY, SCARCE
from tests.distributed.cluster import Cluster, broker_url
from tests.support.databases import database_outage, fresh_database, stock_levels
from tests.support.metrics import scrape
from tests.support.orders import Client, Planned, captures_per_order, mixed_orders
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
    killed = ("orders-1", "inventory-1", "payment-1")
    try:
        submission = Submission(client, mixed_orders(1000, random.Random(47)))
        submitting = submission.start()
        await submission.reached(300)
        handled = {name: _handled(cluster, name) for name in cluster.procs if "-" in name}
        for name in killed:
            cluster.kill(name)  # mid-batch: their unsettled deliveries go to the survivors
        await submitting
        final = await client.wait_settled(
            {oid: p.who for oid, p in submission.accepted.items()}, timeout=240
        )
    finally:
        await client.aclose()
    await cluster.check_outcome(submission.accepted, final)
    # Both instances of every worker were doing work when the killing started. (Whether a
    # killed one held deliveries at that instant depends on the machine: on a busy one the
    # survivors count them in orderflow_messages_redelivered_total, on an idle one the
    # instances keep up and hold nothing between orders, so it is not asserted.)
    assert all(handled.values()), handled


def _handled(cluster: Cluster, name: str) -> float:
    return scrape(cluster.procs[name].url).value("orderflow_messages_processed_total")


async def test_cancels_racing_the_workers_under_load(cluster: Cluster) -> None:
    """Half the orders are cancelled (twice at once) as soon as they are accepted, while two
    instances of every worker move them along: every cancel answers 202 or 409, an order whose
    cancel was accepted ends `cancelled`, with its stock given back and its capture refunded."""
    await asyncio.to_thread(cluster.start_all, 2)
    client = Client(cluster.api_url, cluster.signer(), concurrency=64)
    cancelled: dict[str, list[int]] = {}

    async def place_and_maybe_cancel(n: int, p: Planned) -> tuple[str, Planned]:
        response = await client.place(p)
        assert response.status_code == 202, response.text
        oid = response.json()["id"]
        if n % 2 == 0:
            answers = await asyncio.gather(client.cancel(oid, p.who), client.cancel(oid, p.who))
            cancelled[oid] = [a.status_code for a in answers]
        return oid, p

    try:
        placed = await asyncio.gather(
            *(
                place_and_maybe_cancel(n, p)
                for n, p in enumerate(mixed_orders(300, random.Random(71)))
            )
        )
        final = await client.wait_settled({oid: p.who for oid, p in placed}, timeout=240)
    finally:
        await client.aclose()

    answers = [code for codes in cancelled.values() for code in codes]
    assert set(answers) <= {202, 409}, Counter(answers)
    won = {oid for oid, codes in cancelled.items() if 202 in codes}
    assert won, "no cancel reached an order in time: nothing raced"
    for oid in won:
        assert final[oid]["status"] == "cancelled", final[oid]
    for oid, p in placed:
        if oid not in won and p.expected is not None:
            assert final[oid]["status"] == p.expected, final[oid]
    sold: Counter[str] = Counter()
    for doc in final.values():
        if doc["status"] == "confirmed":
            for line in doc["lines"]:  # type: ignore[attr-defined]
                sold[line["sku"]] += line["quantity"]
    for sku, (on_hand, reserved) in (await stock_levels(cluster.database_url)).items():
        initial = sum(SCARCE[sku].values()) if sku in SCARCE else 2 * PLENTY
        assert (on_hand, reserved) == (initial - sold[sku], 0), sku
    captures = captures_per_order(cluster.payments_ledger)
    refunds = captures_per_order(cluster.payments_ledger, kind="refund")
    assert set(captures.values()) <= {1}
    assert set(refunds.values()) <= {1}
    confirmed = {oid for oid, doc in final.items() if doc["status"] == "confirmed"}
    assert set(captures) - set(refunds) == confirmed, "kept exactly the confirmed orders' money"
    assert set(refunds) <= won
    assert "all invariants hold" in cluster.orderflow(
        "audit", "--database-url", cluster.database_url
    )


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
