"""The whole system as real processes (`orderflow run`) over real HTTP."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orderflow.demo.catalog import PLENTY, SCARCE
from orderflow.domain.order import SETTLED_STATUSES
from tests.support.orders import (
    Client,
    Planned,
    captures_per_order,
    mixed_orders,
    settled_statuses,
    stock_levels,
)
from tests.support.system import System


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    sys_ = System(tmp_path / "data")
    sys_.start()
    yield sys_
    if sys_.proc and sys_.proc.poll() is None:
        sys_.stop()


def audit(data_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "orderflow", "audit", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_300_concurrent_orders_reach_the_right_final_status(system: System) -> None:
    planned = mixed_orders(300, random.Random(7))
    # 20 of them are sent twice with one Idempotency-Key: they must create nothing new.
    for i, p in enumerate(planned[:20]):
        p.idempotency_key = f"key-{i}"
    client = Client(system.url, system.signer())
    try:
        sends = [*planned, *planned[:20]]
        responses = await asyncio.gather(*(client.place(p) for p in sends))
        assert all(r.status_code == 202 for r in responses), [r.text for r in responses[:3]]
        ids = [r.json()["id"] for r in responses]
        assert ids[300:] == ids[:20], "a replayed key must answer with the same order"
        replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
        assert Counter(replayed)["true"] == 20
        owners = {oid: p.who for oid, p in zip(ids, sends, strict=True)}
        final = await client.wait_settled(owners)
    finally:
        await client.aclose()

    assert len(final) == 300
    for oid, p in zip(ids[:300], planned, strict=True):
        status = final[oid]["status"]
        if p.expected is not None:
            assert status == p.expected, (p.token, final[oid])
        else:
            assert status in {"confirmed", "rejected"}, final[oid]
    scarce = [
        final[oid]["status"]
        for oid, p in zip(ids[:300], planned, strict=True)
        if p.expected is None
    ]
    assert Counter(scarce)["confirmed"] == sum(SCARCE["LIMITED-TEE"].values())

    # Stock adds up exactly: nothing is left reserved, and on hand fell by what was confirmed.
    sold: Counter[str] = Counter()
    for oid in set(ids):
        if final[oid]["status"] == "confirmed":
            for line in final[oid]["lines"]:  # type: ignore[attr-defined]
                sold[line["sku"]] += line["quantity"]
    for sku, (on_hand, reserved) in stock_levels(system.data_dir / "orderflow.db").items():
        initial = sum(SCARCE[sku].values()) if sku in SCARCE else 2 * PLENTY
        assert reserved == 0, sku
        assert on_hand == initial - sold[sku], sku

    # Exactly one charge per confirmed order, none for the others.
    charges = captures_per_order(system.data_dir / "payment-simulator.db")
    assert {oid for oid in set(ids) if final[oid]["status"] == "confirmed"} == set(charges)
    assert set(charges.values()) == {1}
    assert "all invariants hold" in audit(system.data_dir)


async def test_kill_9_with_orders_in_flight_loses_and_doubles_nothing(tmp_path: Path) -> None:
    # A short lease, so deliveries the killed workers held come back within seconds.
    system = System(tmp_path / "data", env={"ORDERFLOW_ACK_WAIT": "3"})
    system.start()
    planned = mixed_orders(500, random.Random(11))
    client = Client(system.url, system.signer(), concurrency=64)
    accepted: dict[str, Planned] = {}
    half_accepted = asyncio.Event()
    killed = asyncio.Event()

    async def place(p: Planned) -> None:
        try:
            response = await client.place(p)
        except httpx.TransportError:
            if killed.is_set():
                return  # cut off by the kill: never acknowledged, so nothing was promised
            raise
        assert response.status_code == 202, response.text
        accepted[response.json()["id"]] = p
        if len(accepted) >= 250:
            half_accepted.set()

    try:
        submitting = asyncio.gather(*(place(p) for p in planned))
        await half_accepted.wait()
        killed.set()
        system.kill()  # mid-submission and mid-processing
        await submitting
        killed_with = len(accepted)
        system.start()
        final = await client.wait_settled({oid: p.who for oid, p in accepted.items()})
    finally:
        await client.aclose()
        if system.proc and system.proc.poll() is None:
            system.stop()

    assert killed_with >= 250
    for oid, p in accepted.items():
        if p.expected is not None:
            assert final[oid]["status"] == p.expected, final[oid]
        timeline = final[oid]["timeline"]
        entered = [e["status"] for e in timeline if e["status"] != e["previous_status"]]  # type: ignore[union-attr]
        assert entered.count(final[oid]["status"]) == 1, timeline
    charges = captures_per_order(system.data_dir / "payment-simulator.db")
    assert set(charges.values()) <= {1}, "nobody is charged twice"
    # Orders whose 202 the kill cut off may still have been committed; they count like the rest.
    statuses = await settled_statuses(system.data_dir / "orderflow.db")
    assert set(accepted) <= set(statuses), "an acknowledged order was lost"
    assert {oid for oid, status in statuses.items() if status == "confirmed"} == set(charges)
    assert "all invariants hold" in audit(system.data_dir)


async def test_sigterm_finishes_or_hands_back_in_flight_work(tmp_path: Path) -> None:
    # Leases far longer than the test may wait: what a stopping worker held must be handed back
    # by its shutdown, or the restarted system could not finish it in time.
    system = System(tmp_path / "data", env={"ORDERFLOW_ACK_WAIT": "600"})
    system.start()
    planned = mixed_orders(400, random.Random(5))
    client = Client(system.url, system.signer())
    try:
        responses = await asyncio.gather(*(client.place(p) for p in planned))
        assert {r.status_code for r in responses} == {202}
        # At once: the pipeline is still working through the orders.
        assert system.stop(timeout=30) == 0, system.logs()  # graceful, and promptly
        database = system.data_dir / "orderflow.db"
        unsettled, leased = _unsettled_and_leased(database)
        assert unsettled > 0, "the signal came after the work was done: nothing was in flight"
        assert leased == 0, "the shutdown left deliveries leased until their ack_wait runs out"
        system.start()
        ids = {r.json()["id"]: p.who for r, p in zip(responses, planned, strict=True)}
        final = await client.wait_settled(ids)
    finally:
        await client.aclose()
        if system.proc and system.proc.poll() is None:
            system.stop()
    for r, p in zip(responses, planned, strict=True):
        if p.expected is not None:
            assert final[r.json()["id"]]["status"] == p.expected
    assert "all invariants hold" in audit(system.data_dir)


def _unsettled_and_leased(database: Path) -> tuple[int, int]:
    """Orders not yet settled, and deliveries still leased (the broker's tables live in the
    database's file in this shape)."""
    settled = sorted(SETTLED_STATUSES)
    with sqlite3.connect(database) as conn:
        (unsettled,) = conn.execute(
            f"SELECT count(*) FROM orders WHERE status NOT IN ({','.join('?' * len(settled))})",
            settled,
        ).fetchone()
        (leased,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE lease_until > ?", (time.time(),)
        ).fetchone()
    return int(unsettled), int(leased)


async def test_the_supervisor_restarts_a_service_that_dies(tmp_path: Path) -> None:
    system = System(tmp_path / "data", env={"ORDERFLOW_ACK_WAIT": "3"})
    system.start()
    client = Client(system.url, system.signer())
    try:
        os.kill(system.child_pid("worker all"), signal.SIGKILL)
        planned = mixed_orders(50, random.Random(3))
        responses = await asyncio.gather(*(client.place(p) for p in planned))
        assert {r.status_code for r in responses} == {202}
        final = await client.wait_settled(
            {r.json()["id"]: p.who for r, p in zip(responses, planned, strict=True)}, timeout=60
        )
    finally:
        await client.aclose()
        system.stop()
    assert len(final) == 50
    assert "child exited; restarting" in system.logs_all()


async def test_the_relay_prunes_applied_message_ids_past_their_retention(tmp_path: Path) -> None:
    system = System(tmp_path / "data", env={"ORDERFLOW_PROCESSED_RETENTION": "3"})
    system.start()
    client = Client(system.url, system.signer())
    db_path = system.data_dir / "orderflow.db"
    try:
        planned = mixed_orders(20, random.Random(13))
        responses = await asyncio.gather(*(client.place(p) for p in planned))
        assert {r.status_code for r in responses} == {202}
        owners = {r.json()["id"]: p.who for r, p in zip(responses, planned, strict=True)}
        await client.wait_settled(owners)
        # The last ids are younger than the retention when the orders settle.
        assert processed_ids_per_consumer(db_path), "the consumers recorded what they applied"
        deadline = time.monotonic() + 20
        while processed_ids_per_consumer(db_path):
            assert time.monotonic() < deadline, processed_ids_per_consumer(db_path)
            await asyncio.sleep(0.5)
    finally:
        await client.aclose()
        system.stop()
    assert "all invariants hold" in audit(system.data_dir)


def processed_ids_per_consumer(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT consumer, COUNT(*) FROM processed_messages GROUP BY consumer"
        ).fetchall()
    return dict(rows)
