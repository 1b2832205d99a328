"""Reservation expiry and the stuck-order watchdog as they run in a real worker process (issue 11):
the API and `orderflow worker ...` processes, orders over real HTTP, outcomes on the timeline.

A stage is left out on purpose (no payment worker; no inventory worker) so orders stop where the
guards must act, and started later so the late answer meets the decision already taken.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.api.harness import Api, api_server
from tests.support.databases import stock_levels
from tests.support.system import customer
from tests.support.workers import worker_process

SKU = "MUG-WHT"


def types(doc: dict[str, Any]) -> list[str]:
    return [e["type"] for e in doc["timeline"]]


def reserved_units(database_url: str) -> int:
    return asyncio.run(stock_levels(database_url))[SKU][1]


def audit(data_dir: Path, database_url: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "orderflow",
            "audit",
            "--data-dir",
            str(data_dir),
            "--database-url",
            database_url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unpaid_reservation_expires_and_the_late_payment_is_refunded(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "data"
    # Reserved orders are the expiry's, not the watchdog's, in this test.
    env = {
        "ORDERFLOW_DATABASE_URL": database_url,
        "ORDERFLOW_RESERVATION_TTL": "1",
        "ORDERFLOW_WATCHDOG_DEADLINES": '{"pending": 600}',
    }
    with api_server(data_dir, database_url) as system:
        api, who = Api(system), customer()
        with worker_process(data_dir, "orders", "inventory", "relay", env=env):
            response = api.place(who, [(SKU, 3)])
            assert response.status_code == 202, response.text
            oid = response.json()["id"]
            # No payment worker: the order waits in `reserved` until its reservation expires.
            doc = api.wait_for(oid, who, lambda d: "StockReleased" in types(d))
            assert doc["status"] == "cancelled"
            expired = next(e for e in doc["timeline"] if e["type"] == "ReservationExpired")
            assert expired["previous_status"] == "reserved"
            assert expired["reason"] == "reservation expired: not paid within 1s"
            assert reserved_units(database_url) == 0
            # The payment service comes back and captures: the expired order is refunded.
            with worker_process(data_dir, "payment", env=env):
                doc = api.wait_for(oid, who, lambda d: "PaymentRefunded" in types(d))
        api.close()
    assert doc["status"] == "cancelled"
    assert types(doc).index("PaymentCaptured") < types(doc).index("PaymentRefunded")
    assert reserved_units(database_url) == 0
    audit(data_dir, database_url)


def test_a_stuck_order_is_redriven_then_failed_with_the_reason(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "data"
    env = {
        "ORDERFLOW_DATABASE_URL": database_url,
        "ORDERFLOW_WATCHDOG_DEADLINES": json.dumps({"pending": 1}),
        "ORDERFLOW_WATCHDOG_REDRIVES": "2",
    }
    with api_server(data_dir, database_url) as system:
        api, who = Api(system), customer()
        with worker_process(data_dir, "orders", "relay", env=env):
            response = api.place(who, [(SKU, 2)])
            assert response.status_code == 202, response.text
            oid = response.json()["id"]
            # No inventory worker: nothing answers its ReserveStock, however often it is sent.
            doc = api.wait_for(oid, who, lambda d: d["status"] == "failed")
            stalled = [e for e in doc["timeline"] if e["type"] == "OrderStalled"]
            # Sweeps come every second or so: one or two re-drives before the third deadline.
            assert 1 <= len(stalled) <= 2
            assert {e["actor"] for e in stalled} == {"watchdog"}
            assert stalled[0]["reason"].startswith("no progress in pending for ")
            assert stalled[0]["reason"].endswith("s; its step was sent again")
            last = doc["timeline"][-1]
            assert (last["type"], last["actor"]) == ("ProcessingFailed", "watchdog")
            assert last["reason"].startswith("watchdog: no progress in pending for ")
            assert last["reason"].endswith("s after 2 re-drives; given up")
            # Inventory comes back and works through what was sent: the reservation made for
            # the failed order is released again.
            with worker_process(data_dir, "inventory", env=env):
                api.wait_for(oid, who, lambda d: types(d).count("StockReleased") >= 1)
        api.close()
    assert reserved_units(database_url) == 0
    audit(data_dir, database_url)
