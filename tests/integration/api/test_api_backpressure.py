"""Backpressure by backlog (issue 11): past the pipeline's backlog bound POST answers 429 with
Retry-After and a problem+json reason, every order answered 202 before or among the 429s is
processed once workers catch up, and submissions are accepted again once the backlog drains.

The API runs alone first (no workers), so every accepted order stays in the backlog; then
`orderflow worker all` starts and works it off.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from orderflow.domain.identity import Identity
from tests.integration.api.harness import Api, api_server, assert_problem
from tests.support.databases import query
from tests.support.orders import SETTLED
from tests.support.system import customer, order_body
from tests.support.workers import worker_process

BOUND = 12  # outbox rows plus orders in flight; each new order adds three


async def waves(url: str, headers: dict[str, str]) -> list[httpx.Response]:
    """Waves of 10 concurrent orders until 20 or more were refused (or 40 waves went by)."""
    responses: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(40):
            wave = await asyncio.gather(
                *(
                    client.post(
                        "/api/v1/orders", json=order_body([("MUG-WHT", 1)]), headers=headers
                    )
                    for _ in range(10)
                )
            )
            responses.extend(wave)
            if sum(r.status_code != 202 for r in responses) >= 20:
                break
    return responses


def settled(api: Api, order_id: str, who: Identity) -> str:
    doc = api.wait_for(order_id, who, lambda d: d["status"] in SETTLED, timeout=60)
    return str(doc["status"])


def test_past_the_backlog_bound_submissions_get_429_and_every_202_is_processed(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "data"
    env = {"ORDERFLOW_BACKLOG_MAX": str(BOUND), "ORDERFLOW_BACKLOG_REFRESH": "0.05"}
    with api_server(data_dir, database_url, env) as system:
        api = Api(system)
        who = customer()
        # Nothing works the backlog off: it grows with every 202 until the gate's next reading
        # sees it past the bound. Waves of concurrent submissions go on among the 429s, so some
        # are accepted while others are already refused.
        responses = asyncio.run(waves(system.url, api.auth(who)))
        accepted = [r.json()["id"] for r in responses if r.status_code == 202]
        refused = [r for r in responses if r.status_code != 202]
        assert len(refused) >= 20, f"no 429 after {len(accepted)} accepted orders"
        assert len(accepted) * 3 > BOUND
        for response in refused:
            problem = assert_problem(response, 429)
            assert problem["reason"] == "backlog"
            assert problem["title"] == "Overloaded"
            assert int(response.headers["Retry-After"]) >= 1
        # Refused means not stored; accepted means stored.
        stored = asyncio.run(query(database_url, "SELECT id FROM orders"))
        assert {str(row[0]) for row in stored} == set(accepted)

        with worker_process(data_dir, "all", env={"ORDERFLOW_DATABASE_URL": database_url}):
            finals = {oid: settled(api, oid, who) for oid in accepted}
            assert set(finals.values()) == {"confirmed"}, finals
            # Drained: the gate's next reading lets orders in again.
            deadline = time.monotonic() + 30
            while (response := api.place(who)).status_code == 429:
                assert time.monotonic() < deadline, "still refused after the backlog drained"
                time.sleep(0.05)
            assert response.status_code == 202, response.text
            assert settled(api, response.json()["id"], who) == "confirmed"
        api.close()
