"""SimulatedPaymentGateway: a local stand-in for a card processor, with test tokens.

    tok_visa                 approved
    tok_decline              declined ("card_declined")
    tok_insufficient_funds   declined ("insufficient_funds")
    tok_fail_transient       asks to be retried on the first two attempts, then approved
    tok_timeout              its first attempt hangs for SLOW seconds (holding up every other
                             call, as a provider in trouble does) then fails; then approved
    anything else            declined ("invalid_token")

Its ledger lives in its own SQLite file, as a real provider's would live in its own system: results
survive a crash of the caller, so a retried call with the same idempotency key gets the same answer
and `charges_per_order` can prove nobody was charged twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from orderflow.domain.money import Money
from orderflow.ports.audit import ProviderMovement
from orderflow.ports.payments import Approved, Declined, ProviderAnswer, TransientPaymentError

DECLINES = {"tok_decline": "card_declined", "tok_insufficient_funds": "insufficient_funds"}
TRANSIENT_FAILURES = {"tok_fail_transient": 2}
SLOW_ATTEMPTS = {"tok_timeout": 1}
SLOW = 2.0  # seconds

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    idempotency_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    approved INTEGER NOT NULL,
    reference TEXT NOT NULL,
    decline_reason TEXT,
    amount INTEGER,
    currency TEXT,
    parent TEXT
);
CREATE TABLE IF NOT EXISTS attempts (idempotency_key TEXT PRIMARY KEY, count INTEGER NOT NULL);
-- Captures and refunds look up their authorization or capture by reference.
CREATE INDEX IF NOT EXISTS operations_reference ON operations (reference);
"""


# Each approved capture with its authorization, each approved refund with its capture's.
_MOVEMENTS = """
SELECT c.kind, c.reference, c.amount, c.currency, a.idempotency_key FROM operations c
JOIN operations a ON a.reference = c.parent AND a.kind = 'authorization'
WHERE c.kind = 'capture' AND c.approved = 1
UNION ALL
SELECT r.kind, r.reference, r.amount, r.currency, a.idempotency_key FROM operations r
JOIN operations c ON c.reference = r.parent AND c.kind = 'capture'
JOIN operations a ON a.reference = c.parent AND a.kind = 'authorization'
WHERE r.kind = 'refund' AND r.approved = 1
"""


def _decline_reason(token: str) -> str | None:
    if token in DECLINES:
        return DECLINES[token]
    if token == "tok_visa" or token in TRANSIENT_FAILURES or token in SLOW_ATTEMPTS:
        return None
    return "invalid_token"


def _answer(reference: str, decline_reason: str | None) -> ProviderAnswer:
    return Approved(reference) if decline_reason is None else Declined(decline_reason)


class SimulatedPaymentGateway:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One thread owns the connection: sqlite3 objects must stay on the thread that made them.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="payment-sim")
        self._conn = self._executor.submit(self._open, path).result()

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # Survives a crash of any process (what the tests need); a power cut may lose the last
        # calls, which only a real provider has to care about.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(_SCHEMA)
        return conn

    async def authorize(self, *, idempotency_key: str, amount: Money, token: str) -> ProviderAnswer:
        return await self._run(self._authorize, idempotency_key, amount, token)

    async def capture(self, *, idempotency_key: str, authorization: str) -> ProviderAnswer:
        return await self._run(self._follow_up, "capture", idempotency_key, authorization)

    async def refund(self, *, idempotency_key: str, capture: str) -> ProviderAnswer:
        return await self._run(self._follow_up, "refund", idempotency_key, capture)

    async def _run(self, fn: object, *args: object) -> ProviderAnswer:
        loop = asyncio.get_running_loop()
        result: ProviderAnswer = await loop.run_in_executor(self._executor, fn, *args)  # type: ignore[arg-type]
        return result

    def _authorize(self, key: str, amount: Money, token: str) -> ProviderAnswer:
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            known = self._known(key)
            if known:
                return known
            attempt = self._count_attempt(key)
            if attempt > TRANSIENT_FAILURES.get(token, 0) + SLOW_ATTEMPTS.get(token, 0):
                return self._store(key, "authorization", _decline_reason(token), amount, None)
        # The attempt count is committed first, as a flaky provider would have seen the call.
        if attempt <= SLOW_ATTEMPTS.get(token, 0):
            # On the provider's only thread, after the transaction: every other call waits too.
            time.sleep(SLOW)
        raise TransientPaymentError(f"simulated provider timeout (attempt {attempt})")

    def _follow_up(self, kind: str, key: str, parent: str) -> ProviderAnswer:
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            known = self._known(key)
            if known:
                return known
            row = self._conn.execute(
                "SELECT amount, currency FROM operations WHERE reference = ? AND approved = 1",
                (parent,),
            ).fetchone()
            reason = (
                None if row else f"unknown {'authorization' if kind == 'capture' else 'capture'}"
            )
            amount = Money(row[0], row[1]) if row else None
            return self._store(key, kind, reason, amount, parent)

    def _known(self, key: str) -> ProviderAnswer | None:
        row = self._conn.execute(
            "SELECT approved, reference, decline_reason FROM operations WHERE idempotency_key = ?",
            (key,),
        ).fetchone()
        return _answer(row[1], None if row[0] else (row[2] or "declined")) if row else None

    def _count_attempt(self, key: str) -> int:
        self._conn.execute(
            "INSERT INTO attempts VALUES (?, 1) "
            "ON CONFLICT(idempotency_key) DO UPDATE SET count = count + 1",
            (key,),
        )
        return int(
            self._conn.execute(
                "SELECT count FROM attempts WHERE idempotency_key = ?", (key,)
            ).fetchone()[0]
        )

    def _store(
        self, key: str, kind: str, reason: str | None, amount: Money | None, parent: str | None
    ) -> ProviderAnswer:
        reference = f"{kind[:4]}_{uuid.uuid4().hex}"
        self._conn.execute(
            "INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                kind,
                int(reason is None),
                reference,
                reason,
                amount.amount if amount else None,
                amount.currency if amount else None,
                parent,
            ),
        )
        return _answer(reference, reason)

    def charges_per_order(self) -> dict[str, int]:
        """Approved captures per idempotency key prefix (the order id); for audits and tests."""
        rows = self._executor.submit(
            lambda: self._conn.execute(
                "SELECT idempotency_key FROM operations WHERE kind = 'capture' AND approved = 1"
            ).fetchall()
        ).result()
        counts: dict[str, int] = {}
        for (key,) in rows:
            order_id = key.split(":", 1)[-1]
            counts[order_id] = counts.get(order_id, 0) + 1
        return counts

    async def movements(self) -> list[ProviderMovement]:
        """Approved captures and refunds (the audit's ProviderLedger port), each with the order of
        the authorization it descends from: the payment handler authorizes under
        `authorize:<order id>`, where a real provider would keep the order id as metadata."""
        rows = await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: self._conn.execute(_MOVEMENTS).fetchall()
        )
        return [
            ProviderMovement(key.split(":", 1)[-1], kind, reference, amount, currency)
            for kind, reference, amount, currency, key in rows
        ]

    def close(self) -> None:
        self._executor.submit(self._conn.close).result()
        self._executor.shutdown()
