"""A dead letter as an admin meets it on `orderflow run`, through the gateway's public port: a
payment whose provider keeps failing exhausts the payment group's own retry policy (from the
environment), the order fails with its stock released, and the admin sees the dead letter with
every attempt's error (a customer is refused); once the provider is back, the admin's replay
restarts the order and it completes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from tests.support.system import System, free_port, order_body

ADMIN_LINE = re.compile(r"Demo admin \(shown once\):\s+(\S+) / (\S+)")
DLQ = "/api/v1/admin/dead-letters"


def login(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = client.post("/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def available(client: httpx.Client, auth: dict[str, str], sku: str) -> int:
    products = client.get("/api/v1/products", params={"limit": 100}, headers=auth).json()
    return int(next(p["available"] for p in products["items"] if p["sku"] == sku))


def test_an_admin_sees_a_dead_letter_and_its_replay_completes_the_order(
    tmp_path: Path,
) -> None:
    # tok_fail_transient fails twice before it succeeds: two attempts are not enough.
    policies = json.dumps({"payment": {"max_attempts": 2, "base_delay": 0.05, "max_delay": 0.1}})
    env = {"ORDERFLOW_RETRY_POLICIES": policies, "ORDERFLOW_STREAM_PORT": str(free_port())}
    system = System(tmp_path / "data", env=env)
    system.start()
    try:
        with httpx.Client(base_url=system.public_url, timeout=10) as client:
            match = ADMIN_LINE.search(system.logs())
            assert match, system.logs()
            admin = login(client, *match.groups())
            body = {"email": "bo@example.com", "password": "correct horse", "name": "Bo"}
            assert client.post("/auth/register", json=body).status_code in (201, 202)
            customer = login(client, "bo@example.com", "correct horse")
            before = available(client, customer, "MUG-WHT")

            placed = client.post(
                "/api/v1/orders",
                json=order_body([("MUG-WHT", 1)], "tok_fail_transient"),
                headers=customer,
            )
            assert placed.status_code == 202, placed.text
            order_id = placed.json()["id"]
            deadline = time.monotonic() + 30
            while (order := client.get(f"/api/v1/orders/{order_id}", headers=customer).json())[
                "status"
            ] != "failed":
                assert time.monotonic() < deadline, order
                time.sleep(0.2)
            changes = [(e["type"], e["status"]) for e in order["timeline"]]
            assert changes[:3] == [
                ("OrderPlaced", "pending"),
                ("StockReserved", "reserved"),
                ("ProcessingFailed", "failed"),
            ]
            deadline = time.monotonic() + 30
            while available(client, customer, "MUG-WHT") != before:  # released, shortly after
                assert time.monotonic() < deadline
                time.sleep(0.2)

            refused = client.get(DLQ, headers=customer)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")

            listed = client.get(DLQ, headers=admin)
            assert listed.status_code == 200, listed.text
            [dead] = [d for d in listed.json()["items"] if d["order_id"] == order_id]
            assert (dead["group"], dead["message_type"], dead["attempts"]) == (
                "payment",
                "CapturePayment",
                2,
            )
            detail = client.get(f"{DLQ}/{dead['id']}", headers=admin).json()
            assert [(a["attempt"], a["outcome"]) for a in detail["attempt_log"]] == [
                (1, "retry"),
                (2, "dead_letter"),
            ]
            assert all(a["error"].startswith("TransientError") for a in detail["attempt_log"])

            # The provider has recovered (it approves from the third try on): the replay
            # restarts the order, whose stock went back when it failed, and it completes.
            replay = client.post(f"{DLQ}/{dead['id']}/replay", headers=admin)
            assert replay.status_code == 200, replay.text
            assert replay.json()["outcome"] == "restarted"
            deadline = time.monotonic() + 30
            while (order := client.get(f"/api/v1/orders/{order_id}", headers=customer).json())[
                "status"
            ] != "confirmed":
                assert time.monotonic() < deadline, order
                time.sleep(0.2)
            assert available(client, customer, "MUG-WHT") == before - 1
    finally:
        system.stop()
