"""The embedded broker's storage operations: synchronous, one transaction each.

Everything here runs on the broker's own thread (see `broker.py`); the event loop never touches
SQLite. Times are wall-clock seconds (`time.time()`) because several processes share the file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import orjson

from orderflow.adapters.broker.embedded.schema import BUSY_TIMEOUT_MS
from orderflow.ports.broker import (
    Ack,
    DeadLetter,
    DeadLetterRecord,
    Delivery,
    Outcome,
    OutgoingMessage,
    Retry,
)

# How long SQLite's busy handler itself waits for the write lock before we look again.
_LOCK_STEP_MS = 1


@dataclass(frozen=True, slots=True)
class Receipt:
    """Identifies one lease; a settle whose lease was lost (re-leased elsewhere) does nothing."""

    seq: int
    attempt: int
    owner: str


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    # Taking the write lock up front means a busy file makes us wait rather than fail with
    # SQLITE_BUSY when a read transaction would later need to become a write.
    _begin_immediate(conn)
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """Take the write lock, waiting for other processes in short steps: SQLite's own busy
    handler sleeps up to 100 ms between tries, so a lock that comes free sits idle meanwhile
    (other processes write the same file: the API and the workers, when it is the database's)."""
    conn.execute(f"PRAGMA busy_timeout = {_LOCK_STEP_MS}")
    try:
        deadline, delay = time.monotonic() + BUSY_TIMEOUT_MS / 1000, 0.0002
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.004)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def declare(
    conn: sqlite3.Connection,
    group: str,
    topics: Sequence[str],
    expires_after: float | None = None,
    now: float = 0.0,
) -> None:
    with immediate(conn):
        _declare(conn, group, topics, expires_after, now)


def _declare(
    conn: sqlite3.Connection,
    group: str,
    topics: Sequence[str],
    expires_after: float | None,
    now: float,
) -> None:
    conn.executemany(
        "INSERT INTO subscriptions (grp, topic) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(group, topic) for topic in topics],
    )
    if expires_after is not None:
        conn.execute(
            "INSERT INTO ephemeral_groups (grp, expires_after, last_seen) VALUES (?, ?, ?)"
            " ON CONFLICT DO UPDATE SET last_seen = excluded.last_seen",
            (group, expires_after, now),
        )


def _sweep_expired(conn: sqlite3.Connection, now: float) -> None:
    """Delete ephemeral groups nobody leased for from for their expiry: every member is gone
    (stopped or killed), and what they would have read would pile up for ever."""
    expired = [
        (grp,)
        for (grp,) in conn.execute(
            "SELECT grp FROM ephemeral_groups WHERE last_seen + expires_after < ?", (now,)
        )
    ]
    for table in ("deliveries", "subscriptions", "dead_letters", "ephemeral_groups"):
        conn.executemany(f"DELETE FROM {table} WHERE grp = ?", expired)


def publish(
    conn: sqlite3.Connection,
    messages: Sequence[OutgoingMessage],
    now: float,
    dedup_window: float,
    prune: bool,
) -> int:
    """Store the batch for every subscribed group; return how many deliveries were created."""
    rows: list[tuple[str, str, str, str, bytes, bytes, float]] = []
    with immediate(conn):
        # Before copying, so a group that expired gets no more rows (a few-row table: cheap).
        _sweep_expired(conn, now)
        groups_of: dict[str, list[str]] = {}
        for message in messages:
            # A message id older than the window counts as new again, even before pruning.
            seen = conn.execute(
                "INSERT INTO published (topic, message_id, seen_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO UPDATE SET seen_at = excluded.seen_at WHERE seen_at < ?",
                (message.topic, message.message_id, now, now - dedup_window),
            )
            if seen.rowcount == 0:
                continue
            groups = groups_of.get(message.topic)
            if groups is None:
                groups = [
                    grp
                    for (grp,) in conn.execute(
                        "SELECT grp FROM subscriptions WHERE topic = ?", (message.topic,)
                    )
                ]
                groups_of[message.topic] = groups
            m, headers = message, orjson.dumps(dict(message.headers))
            rows += [(g, m.topic, m.key, m.message_id, m.payload, headers, now) for g in groups]
        conn.executemany(
            "INSERT INTO deliveries (grp, topic, key, message_id, payload, headers, available_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        if prune:
            conn.execute("DELETE FROM published WHERE seen_at < ?", (now - dedup_window,))
    return len(rows)


# Oldest first, skipping rows leased to someone, waiting for a retry delay, or queued behind an
# earlier row of the same key (which may itself be leased or waiting).
_CANDIDATES = """
SELECT seq, topic, key, message_id, payload, headers, attempts FROM deliveries AS d
WHERE grp = :grp AND available_at <= :now AND (lease_until IS NULL OR lease_until <= :now)
  AND NOT EXISTS (
      SELECT 1 FROM deliveries AS e WHERE e.grp = d.grp AND e.key = d.key AND e.seq < d.seq)
ORDER BY seq LIMIT :limit
"""


def lease(
    conn: sqlite3.Connection,
    group: str,
    owner: str,
    limit: int,
    *,
    ack_wait: float,
    max_attempts: int,
    now: float,
    topics: Sequence[str] = (),
    expires_after: float | None = None,
) -> tuple[list[Delivery], int]:
    """Lease up to `limit` deliveries; return them and how many were dead-lettered instead.
    Leasing keeps an ephemeral group alive, and declares it again had it expired meanwhile (its
    member stalled for longer than the expiry: what was published in between is gone)."""
    deliveries: list[Delivery] = []
    exhausted: list[tuple[int, int]] = []
    with immediate(conn):
        if expires_after is not None:
            # Publishing sweeps too, but where the outbox trigger publishes, publish is rare.
            _sweep_expired(conn, now)
            alive = conn.execute(
                "UPDATE ephemeral_groups SET last_seen = ? WHERE grp = ?", (now, group)
            )
            if alive.rowcount == 0:
                _declare(conn, group, topics, expires_after, now)
        params = {"grp": group, "now": now, "limit": limit}
        for seq, topic, key, message_id, payload, headers, attempts in conn.execute(
            _CANDIDATES, params
        ):
            if attempts >= max_attempts:
                # Its last lease expired: the consumer crashed (or hung) on every attempt.
                exhausted.append((seq, attempts))
                continue
            deliveries.append(
                Delivery(
                    topic=topic,
                    key=key,
                    message_id=message_id,
                    payload=payload,
                    attempt=attempts + 1,
                    headers=orjson.loads(headers),
                    receipt=Receipt(seq, attempts + 1, owner),
                )
            )
        conn.executemany(
            "UPDATE deliveries SET attempts = attempts + 1, lease_until = ?, lease_owner = ?"
            " WHERE seq = ?",
            [(now + ack_wait, owner, _receipt(d).seq) for d in deliveries],
        )
        for seq, attempts in exhausted:
            reason = (
                f"max_attempts ({max_attempts}) reached: lease expired after attempt {attempts}"
            )
            _bury(conn, seq, reason, now)
    return deliveries, len(exhausted)


def settle(
    conn: sqlite3.Connection,
    outcomes: Sequence[tuple[Delivery, Outcome]],
    *,
    max_attempts: int,
    now: float,
) -> None:
    acks: list[tuple[int, str, int]] = []
    retries: list[tuple[float, int, str, int]] = []
    burials: list[tuple[Receipt, str]] = []
    for delivery, outcome in outcomes:
        r = _receipt(delivery)
        match outcome:
            case Ack():
                acks.append((r.seq, r.owner, r.attempt))
            case Retry(delay=delay) if r.attempt < max_attempts:
                retries.append((now + max(delay, 0.0), r.seq, r.owner, r.attempt))
            case Retry():
                burials.append((r, f"max_attempts ({max_attempts}) reached: retry requested"))
            case DeadLetter(reason=reason):
                burials.append((r, reason))
    with immediate(conn):
        conn.executemany(
            "DELETE FROM deliveries WHERE seq = ? AND lease_owner = ? AND attempts = ?", acks
        )
        conn.executemany(
            "UPDATE deliveries SET available_at = ?, lease_until = NULL, lease_owner = NULL"
            " WHERE seq = ? AND lease_owner = ? AND attempts = ?",
            retries,
        )
        for r, reason in burials:
            _bury(conn, r.seq, reason, now, owner=r.owner, attempt=r.attempt)


def release(conn: sqlite3.Connection, receipts: Sequence[Receipt]) -> None:
    """Hand unsettled leases back at once; a graceful stop is not a failed attempt."""
    with immediate(conn):
        conn.executemany(
            "UPDATE deliveries SET attempts = attempts - 1, lease_until = NULL,"
            " lease_owner = NULL WHERE seq = ? AND lease_owner = ? AND attempts = ?",
            [(r.seq, r.owner, r.attempt) for r in receipts],
        )


def backlog(conn: sqlite3.Connection, group: str) -> int:
    """Waiting, leased or waiting for a retry: every row of the group is unsettled."""
    row = conn.execute("SELECT count(*) FROM deliveries WHERE grp = ?", (group,)).fetchone()
    return int(row[0])


def dead_letters(
    conn: sqlite3.Connection, group: str, limit: int, after: int = 0
) -> list[DeadLetterRecord]:
    rows = conn.execute(
        "SELECT id, topic, key, message_id, payload, attempts, reason FROM dead_letters"
        " WHERE grp = ? AND id > ? AND removed = 0 ORDER BY id LIMIT ?",
        (group, after, limit),
    )
    return [
        DeadLetterRecord(group, topic, key, message_id, payload, attempts, reason, position)
        for position, topic, key, message_id, payload, attempts, reason in rows
    ]


def dead_letter(conn: sqlite3.Connection, group: str, position: int) -> DeadLetterRecord | None:
    rows = dead_letters(conn, group, 1, position - 1)
    return rows[0] if rows and rows[0].position == position else None


def replay_dead_letter(conn: sqlite3.Connection, group: str, position: int, now: float) -> bool:
    """Move a dead letter back into its group's deliveries as a first attempt (behind its key's
    waiting messages), in one transaction: a second replay finds nothing."""
    with immediate(conn):
        moved = conn.execute(
            "INSERT INTO deliveries (grp, topic, key, message_id, payload, headers, available_at)"
            " SELECT grp, topic, key, message_id, payload, headers, ? FROM dead_letters"
            " WHERE id = ? AND grp = ? AND removed = 0",
            (now, position, group),
        )
        _remove(conn, group, position)
    return moved.rowcount > 0


def discard_dead_letter(conn: sqlite3.Connection, group: str, position: int) -> bool:
    with immediate(conn):
        return _remove(conn, group, position)


def _remove(conn: sqlite3.Connection, group: str, position: int) -> bool:
    gone = conn.execute(
        "UPDATE dead_letters SET removed = 1, payload = x'' WHERE id = ? AND grp = ?"
        " AND removed = 0",
        (position, group),
    )
    return gone.rowcount > 0


def _bury(
    conn: sqlite3.Connection,
    seq: int,
    reason: str,
    now: float,
    *,
    owner: str | None = None,
    attempt: int | None = None,
) -> None:
    # With an owner, only a lease still held by that owner may be buried (settle); without,
    # the caller already holds the row inside this transaction (lease).
    guard = "" if owner is None else " AND lease_owner = :owner AND attempts = :attempt"
    params = {"seq": seq, "reason": reason, "now": now, "owner": owner, "attempt": attempt}
    moved = conn.execute(
        "INSERT INTO dead_letters"
        " (grp, topic, key, message_id, payload, headers, attempts, reason, dead_at)"
        " SELECT grp, topic, key, message_id, payload, headers, attempts, :reason, :now"
        " FROM deliveries WHERE seq = :seq" + guard,
        params,
    )
    if moved.rowcount:
        conn.execute("DELETE FROM deliveries WHERE seq = :seq", {"seq": seq})


def _receipt(delivery: Delivery) -> Receipt:
    receipt = delivery.receipt
    if not isinstance(receipt, Receipt):
        raise TypeError(f"not a delivery of the embedded broker: {delivery!r}")
    return receipt
