"""The order API as a real server process, a signed HTTP client for it, and its database on disk."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from orderflow.adapters.identity.assertions import HEADER, AssertionSigner
from orderflow.bootstrap import prepare
from orderflow.config import Settings
from orderflow.domain.identity import Identity
from tests.support.system import System, order_body

PROBLEM = "application/problem+json"
ORDERS = "/api/v1/orders"
PRODUCTS = "/api/v1/products"
# Tables a refused request must leave untouched.
WRITTEN_TABLES = ("customers", "orders", "order_items", "order_events", "outbox")


@contextmanager
def api_server(
    data_dir: Path, database_url: str = "", env: Mapping[str, str] | None = None
) -> Iterator[System]:
    """`orderflow serve api` alone (no relay, no workers) on a migrated, seeded data dir (and
    database: `database_url`, the data dir's SQLite file by default)."""
    data_dir.mkdir(parents=True)
    # What `orderflow run` prepares (schema, demo catalog, gateway key), done here in-process:
    # two more interpreter starts would double the time the module waits for its server.
    asyncio.run(prepare(Settings(data_dir=data_dir, database_url=database_url)))
    env = {**(env or {}), **({"ORDERFLOW_DATABASE_URL": database_url} if database_url else {})}
    yield from _running(System(data_dir, args=("serve", "api"), env=env))


@contextmanager
def whole_system(data_dir: Path) -> Iterator[System]:
    """`orderflow run`: API, relay and every worker."""
    yield from _running(System(data_dir))


def _running(system: System) -> Iterator[System]:
    system.start()
    try:
        yield system
    finally:
        if system.proc and system.proc.poll() is None:
            system.stop()


class Api:
    """A synchronous client that signs requests as the gateway would."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.signer: AssertionSigner = system.signer()
        self.http = httpx.Client(base_url=system.url, timeout=30)

    def auth(self, who: Identity) -> dict[str, str]:
        return {HEADER: self.signer.sign(who)}

    def place(
        self,
        who: Identity,
        items: list[tuple[str, int]] | None = None,
        token: str = "tok_visa",
        key: str | None = None,
    ) -> httpx.Response:
        headers = self.auth(who)
        if key is not None:
            headers["Idempotency-Key"] = key
        body = order_body(items or [("MUG-WHT", 1)], token)
        return self.http.post(ORDERS, json=body, headers=headers)

    def get(self, path: str, who: Identity, **params: Any) -> httpx.Response:
        return self.http.get(path, headers=self.auth(who), params=params)

    def order(self, order_id: str, who: Identity) -> dict[str, Any]:
        response = self.get(f"{ORDERS}/{order_id}", who)
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        return doc

    def cancel(self, order_id: str, who: Identity) -> httpx.Response:
        return self.http.post(f"{ORDERS}/{order_id}/cancel", headers=self.auth(who))

    def listed_ids(self, who: Identity, **params: Any) -> list[str]:
        """Every order id the listing shows `who`, walking all pages."""
        ids: list[str] = []
        cursor: str | None = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = self.get(ORDERS, who, **query)
            assert response.status_code == 200, response.text
            page = response.json()
            ids.extend(item["id"] for item in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return ids

    def wait_for(
        self,
        order_id: str,
        who: Identity,
        done: Callable[[dict[str, Any]], bool],
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.order(order_id, who)
            if done(doc):
                return doc
            if time.monotonic() > deadline:
                raise TimeoutError(f"order never reached the expected state: {doc}")
            time.sleep(0.1)

    def close(self) -> None:
        self.http.close()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """A problem+json answer with the given status, that says what went wrong."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    return problem


def row_counts(data_dir: Path) -> dict[str, int]:
    """Rows per written table, read straight from the database file."""
    with sqlite3.connect(data_dir / "orderflow.db") as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in WRITTEN_TABLES}
