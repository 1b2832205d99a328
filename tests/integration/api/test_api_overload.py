"""Overload is refused, not dropped: past the intake's limit, POST answers 503 with Retry-After,
and every order that was answered 202 is stored."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx

from orderflow.adapters.identity.assertions import HEADER
from tests.integration.api.harness import api_server, assert_problem
from tests.support.system import customer, order_body


def test_a_burst_past_the_intake_limit_gets_503_and_nothing_accepted_is_lost(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with api_server(data_dir) as system:
        system.stop()
        system.env = {"ORDERFLOW_INTAKE_MAX_WAITING": "2"}
        system.start()
        token = system.signer().sign(customer())

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=system.url, timeout=30) as client:
                return await asyncio.gather(
                    *(
                        client.post(
                            "/api/v1/orders",
                            json=order_body([("MUG-WHT", 1)]),
                            headers={HEADER: token},
                        )
                        for _ in range(200)
                    )
                )

        responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {202, 503}, statuses
    refused = [r for r in responses if r.status_code == 503]
    assert refused, "a burst of 200 against a limit of 2 waiting orders must be refused in part"
    for response in refused[:5]:
        assert_problem(response, 503)
        assert response.headers["Retry-After"] == "1"
    accepted = {r.json()["id"] for r in responses if r.status_code == 202}
    with sqlite3.connect(data_dir / "orderflow.db") as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM orders")}
    assert stored == accepted
