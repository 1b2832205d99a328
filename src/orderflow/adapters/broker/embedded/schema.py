"""The embedded broker's SQLite file: connection settings and tables.

One row of `deliveries` is one message waiting for one group; publishing copies a message once per
subscribed group, so groups never contend for each other's rows and settling is a single-row write.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from orderflow.adapters.broker.embedded.outbox_trigger import publish_outbox_at_commit

Synchronous = Literal["FULL", "NORMAL"]

# Concurrent processes share one file; they queue on the write lock rather than fail.
BUSY_TIMEOUT_MS = 30_000

_TABLES = """
CREATE TABLE IF NOT EXISTS subscriptions (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    PRIMARY KEY (grp, topic)
) WITHOUT ROWID;

-- Groups declared with expires_after: deleted with their rows once no member leased for that long.
CREATE TABLE IF NOT EXISTS ephemeral_groups (
    grp TEXT PRIMARY KEY,
    expires_after REAL NOT NULL,
    last_seen REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    headers BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    lease_until REAL,
    lease_owner TEXT
);
-- The head-of-key check ("is there an earlier row of this key?") is one probe of this index.
CREATE INDEX IF NOT EXISTS deliveries_by_key ON deliveries (grp, key, seq);
-- Fetch walks a group's rows oldest first.
CREATE INDEX IF NOT EXISTS deliveries_by_group ON deliveries (grp, seq);

CREATE TABLE IF NOT EXISTS published (
    topic TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (topic, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS published_by_age ON published (seen_at);

CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    headers BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    dead_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_group ON dead_letters (grp, id);
"""

# A replayed or discarded dead letter stays as a tombstone (removed = 1, payload emptied): its
# id must never be handed out again, because readers page on from the last id they read and
# SQLite reuses the highest rowid once that row is deleted. Added to files made before it.
_DEAD_LETTERS_REMOVED = "ALTER TABLE dead_letters ADD COLUMN removed INTEGER NOT NULL DEFAULT 0"


def open_database(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    """Open (creating if needed) the broker file; call on the thread that will use it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so the write lock is taken up
    # front and a concurrent process waits on busy_timeout instead of failing on lock upgrade.
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk before publish/settle returns, even across power loss.
    # NORMAL: survives kill -9 of any process, but the last commits can be lost on power loss.
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    # Several processes may open a fresh file at once; the write lock serialises the DDL.
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _TABLES.split(";"):
            if statement.strip():
                conn.execute(statement)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(dead_letters)")}
        if "removed" not in columns:
            conn.execute(_DEAD_LETTERS_REMOVED)
        publish_outbox_at_commit(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        conn.close()
        raise
    return conn
