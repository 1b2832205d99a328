"""`orderflow bench`: a load generator that submits orders and reports throughput and latency.

Submission is measured on the client (accepted/s); processing is measured from the orders' own
timelines (the server's timestamps of creation and of the final status), so polling for results
does not distort the figures it reports.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from rich.progress import Progress

from orderflow.adapters.identity.assertions import HEADER, AssertionSigner, ensure_signing_key
from orderflow.domain.identity import CUSTOMER, Identity
from orderflow.domain.order import SETTLED_STATUSES

SKUS = ("TSHIRT-BLK", "HOODIE-GRY", "MUG-WHT", "CAP-RED", "SOCKS-3PK", "STICKER-PK", "POSTER-A2")
SETTLED = {s.value for s in SETTLED_STATUSES}


@dataclass
class BenchResult:
    submitted: int
    accepted: int
    refused: int
    submit_seconds: float
    processed_seconds: float
    latencies: list[float]  # submit-to-final per order, seconds
    statuses: dict[str, int]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0

    def report(self) -> str:
        lines = [
            f"orders submitted      {self.submitted}",
            f"accepted (202)        {self.accepted}   refused {self.refused}",
            f"accepted/s            {self.accepted / self.submit_seconds:,.0f}",
            f"end-to-end orders/s   {len(self.latencies) / self.processed_seconds:,.0f}",
            "submit-to-final       p50 {:.0f} ms  p95 {:.0f} ms  p99 {:.0f} ms".format(
                *(self.percentile(p) * 1000 for p in (50, 95, 99))
            ),
            "final statuses        "
            + ", ".join(f"{k}={v}" for k, v in sorted(self.statuses.items())),
        ]
        return "\n".join(lines)


Headers = Callable[[int], dict[str, str]]


async def login_headers(base_url: str, email: str, password: str) -> Headers:
    """Sign the bench customer up (the gateway answers alike whether or not it exists) and log
    in; every order then carries that customer's bearer token."""
    async with aiohttp.ClientSession(base_url) as client:
        body = {"email": email, "password": password, "name": "Bench customer"}
        async with client.post("/auth/register", json=body) as response:
            if response.status >= 400 and response.status != 409:
                raise RuntimeError(f"register failed: {response.status} {await response.text()}")
        form = {"username": email, "password": password}
        async with client.post("/auth/token", data=form) as response:
            if response.status != 200:
                raise RuntimeError(f"login failed: {response.status} {await response.text()}")
            token = (await response.json())["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    return lambda _: auth


def direct_headers(key_dir: Path, customers: int) -> Headers:
    """Identity assertions signed with the local gateway key, as the gateway would send them."""
    signer = AssertionSigner(ensure_signing_key(key_dir), ttl=3600)
    tokens = [
        {HEADER: signer.sign(Identity(str(uuid.uuid4()), frozenset({CUSTOMER})))}
        for _ in range(customers)
    ]
    return lambda i: tokens[i % len(tokens)]


def order_body(rng: random.Random) -> dict[str, Any]:
    return {
        "items": [{"sku": s, "quantity": rng.randint(1, 3)} for s in rng.sample(SKUS, 2)],
        "shipping_address": {
            "name": "Bench Customer",
            "line1": "1 Load St",
            "city": "Testville",
            "postal_code": "12345",
            "country": "US",
        },
        "payment": {"token": "tok_visa"},
    }


async def run_bench(
    base_url: str,
    headers: Headers,
    orders: int,
    concurrency: int,
    rate: float | None,
    progress: Progress | None = None,
) -> BenchResult:
    rng = random.Random(1)
    # aiohttp rather than httpx: the load generator shares the machine with the system under test,
    # and aiohttp spends several times less CPU per request.
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as client:
        accepted: list[tuple[str, int]] = []
        refused = 0
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(orders):
            queue.put_nowait(i)
        task = progress.add_task("submitting", total=orders) if progress else None
        started = time.monotonic()

        async def submitter() -> None:
            nonlocal refused
            while not queue.empty():
                i = queue.get_nowait()
                if rate:
                    await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
                async with client.post(
                    "/api/v1/orders", json=order_body(rng), headers=headers(i)
                ) as response:
                    if response.status == 202:
                        accepted.append(((await response.json())["id"], i))
                    else:
                        refused += 1
                if progress and task is not None:
                    progress.advance(task)

        await asyncio.gather(*(submitter() for _ in range(concurrency)))
        submit_seconds = time.monotonic() - started
        docs = await _wait_settled(client, accepted, headers, progress)
    created = [_ts(d["created_at"]) for d in docs]
    finished = [_ts(d["timeline"][-1]["at"]) for d in docs]
    statuses: dict[str, int] = {}
    for d in docs:
        statuses[d["status"]] = statuses.get(d["status"], 0) + 1
    return BenchResult(
        submitted=orders,
        accepted=len(accepted),
        refused=refused,
        submit_seconds=submit_seconds,
        processed_seconds=max(finished) - min(created) if docs else 1.0,
        latencies=[f - c for c, f in zip(created, finished, strict=True)],
        statuses=statuses,
    )


async def _wait_settled(
    client: aiohttp.ClientSession,
    accepted: Sequence[tuple[str, int]],
    headers: Headers,
    progress: Progress | None,
) -> list[dict[str, Any]]:
    """Orders are processed roughly first in, first out: wait for the newest, then read all."""
    task = progress.add_task("processing", total=len(accepted)) if progress else None

    async def fetch(oid: str, i: int) -> dict[str, Any]:
        async with client.get(f"/api/v1/orders/{oid}", headers=headers(i)) as response:
            response.raise_for_status()
            doc: dict[str, Any] = await response.json()
            return doc

    pending = list(accepted)
    done: list[dict[str, Any]] = []
    while pending:
        probe = await asyncio.gather(*(fetch(oid, i) for oid, i in pending[-20:]))
        if any(d["status"] not in SETTLED for d in probe):
            await asyncio.sleep(0.2)
            continue
        still: list[tuple[str, int]] = []
        for start in range(0, len(pending), 200):
            chunk = pending[start : start + 200]
            docs = await asyncio.gather(*(fetch(oid, i) for oid, i in chunk))
            for (oid, i), d in zip(chunk, docs, strict=True):
                if d["status"] in SETTLED:
                    done.append(d)
                else:
                    still.append((oid, i))
        if progress and task is not None:
            progress.update(task, completed=len(done))
        pending = still
    return done


def _ts(value: object) -> float:
    return datetime.fromisoformat(str(value)).timestamp()
