"""Submitting order mixes and waiting for their outcome, over real HTTP."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from orderflow.adapters.identity.assertions import HEADER, AssertionSigner
from orderflow.domain.identity import Identity
from orderflow.domain.order import SETTLED_STATUSES
from tests.support.system import customer, order_body

SETTLED = {s.value for s in SETTLED_STATUSES}


@dataclass
class Planned:
    items: list[tuple[str, int]]
    token: str
    expected: str | None  # None when the outcome depends on a race (scarce stock)
    who: Identity
    idempotency_key: str | None = None


def mixed_orders(n: int, rng: random.Random) -> list[Planned]:
    """Visa, declines, transient failures and a scarce sku, in shuffled order."""
    plenty = ["TSHIRT-BLK", "MUG-WHT", "CAP-RED", "SOCKS-3PK", "POSTER-A2"]
    people = [customer(f"c{i}@example.com") for i in range(20)]
    planned: list[Planned] = []
    for i in range(n):
        who = people[i % len(people)]
        items = [(sku, rng.randint(1, 3)) for sku in rng.sample(plenty, rng.randint(1, 3))]
        kind = i % 10
        if kind < 4:
            planned.append(Planned(items, "tok_visa", "confirmed", who))
        elif kind < 6:
            planned.append(Planned(items, "tok_decline", "payment_failed", who))
        elif kind == 6:
            planned.append(Planned(items, "tok_insufficient_funds", "payment_failed", who))
        elif kind < 9:
            planned.append(Planned(items, "tok_fail_transient", "confirmed", who))
        else:
            planned.append(Planned([("LIMITED-TEE", 1), *items[:1]], "tok_visa", None, who))
    rng.shuffle(planned)
    return planned


class Client:
    def __init__(self, base_url: str, signer: AssertionSigner, concurrency: int = 50) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=30,
            limits=httpx.Limits(
                max_connections=concurrency,
                max_keepalive_connections=concurrency,
                # Below the servers' keep-alive timeout (uvicorn: 5 s), so an idle connection is
                # never reused at the moment the server closes it (a ReadError for a request the
                # server never saw). httpx's default of 5 s raced uvicorn's.
                keepalive_expiry=2.0,
            ),
        )
        self._signer = signer
        self._tokens: dict[str, tuple[str, float]] = {}  # subject -> (assertion, signed at)

    def headers(self, who: Identity) -> dict[str, str]:
        # Signed again well within the assertions' 60 s lifetime, as the gateway signs per
        # request: a test that runs long on a busy machine must not fail on an expired one.
        token, signed_at = self._tokens.get(who.subject, ("", 0.0))
        if time.monotonic() - signed_at > 20:
            token, signed_at = self._signer.sign(who), time.monotonic()
            self._tokens[who.subject] = (token, signed_at)
        return {HEADER: token}

    async def place(self, p: Planned) -> httpx.Response:
        headers = self.headers(p.who)
        if p.idempotency_key:
            headers["Idempotency-Key"] = p.idempotency_key
        return await self._http.post(
            "/api/v1/orders", json=order_body(p.items, p.token), headers=headers
        )

    async def cancel(self, order_id: str, who: Identity) -> httpx.Response:
        return await self._http.post(f"/api/v1/orders/{order_id}/cancel", headers=self.headers(who))

    async def get(self, order_id: str, who: Identity) -> httpx.Response:
        return await self._http.get(f"/api/v1/orders/{order_id}", headers=self.headers(who))

    async def wait_settled(
        self, orders: dict[str, Identity], timeout: float = 120.0
    ) -> dict[str, dict[str, object]]:
        """Poll until every order is settled; returns the final order documents."""
        final: dict[str, dict[str, object]] = {}
        deadline = time.monotonic() + timeout
        while len(final) < len(orders):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(orders) - len(final)} orders never settled")
            pending = [oid for oid in orders if oid not in final]
            for chunk in range(0, len(pending), 50):
                batch = pending[chunk : chunk + 50]
                docs = await asyncio.gather(*(self.get(oid, orders[oid]) for oid in batch))
                for oid, resp in zip(batch, docs, strict=True):
                    assert resp.status_code == 200, resp.text
                    if resp.json()["status"] in SETTLED:
                        final[oid] = resp.json()
            if len(final) < len(orders):
                await asyncio.sleep(0.5)
        return final

    async def aclose(self) -> None:
        await self._http.aclose()


async def settled_statuses(db_path: Path, timeout: float = 60) -> dict[str, str]:
    """Every order's status, read straight from the database file once all of them settled.

    Includes orders whose 202 never reached the client (committed just before a kill): they are
    orders like any other and must be processed like any other.
    """
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(db_path) as conn:
            statuses = dict(conn.execute("SELECT id, status FROM orders").fetchall())
        unsettled = [oid for oid, status in statuses.items() if status not in SETTLED]
        if not unsettled:
            return statuses
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(unsettled)} orders never settled: {unsettled[:5]}")
        await asyncio.sleep(0.5)


def stock_levels(db_path: Path) -> dict[str, tuple[int, int]]:
    """(on_hand, reserved) per sku, read straight from the database file."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT sku, SUM(on_hand), SUM(reserved) FROM stock GROUP BY sku"
        ).fetchall()
    return {sku: (on_hand, reserved) for sku, on_hand, reserved in rows}


def captures_per_order(simulator_path: Path, kind: str = "capture") -> dict[str, int]:
    """Approved captures (or refunds) per order in the simulated provider's own ledger."""
    with sqlite3.connect(simulator_path) as conn:
        rows = conn.execute(
            "SELECT idempotency_key FROM operations WHERE kind = ? AND approved = 1", (kind,)
        ).fetchall()
    counts: dict[str, int] = {}
    for (key,) in rows:
        oid = key.split(":", 1)[1]
        counts[oid] = counts.get(oid, 0) + 1
    return counts
