"""Publishing at commit, where the database and the embedded broker share one SQLite file.

A trigger turns each outbox row into the broker's deliveries (one per group subscribed to its
topic, live ephemeral groups only) inside the writer's own transaction, and keeps nothing in the
outbox. That is the relay's whole job, done with no hop, no second commit and no wait: a message
is ready for its consumers the moment the change that caused it commits, and the two cannot be
separated by a crash. The relay keeps running and publishes whatever the trigger did not see
(rows written before it existed).

The outbox belongs to the application's schema, the deliveries to the broker's; only an embedded
broker that finds an `outbox` table in its own file creates the trigger (`IF NOT EXISTS`, so a
migration that rebuilds the table and drops it gets it back at the next start).
"""

from __future__ import annotations

import sqlite3

# Wall-clock seconds, as the broker's own `time.time()` stamps (julianday has ms resolution).
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"

_TRIGGER = f"""
CREATE TRIGGER IF NOT EXISTS outbox_publishes BEFORE INSERT ON outbox
BEGIN
    INSERT INTO deliveries (grp, topic, key, message_id, payload, headers, available_at)
    SELECT s.grp, NEW.topic, NEW.key, NEW.message_id, NEW.payload, CAST('{{}}' AS BLOB), {_NOW}
    FROM subscriptions AS s
    WHERE s.topic = NEW.topic
      AND s.grp NOT IN (
          SELECT grp FROM ephemeral_groups WHERE last_seen + expires_after < {_NOW}
      );
    SELECT RAISE(IGNORE);
END
"""


def publish_outbox_at_commit(conn: sqlite3.Connection) -> None:
    """Create the trigger if this file holds an outbox. Call in a write transaction (the
    caller's, with the broker's own tables created)."""
    has_outbox = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
    ).fetchone()
    if has_outbox:
        conn.execute(_TRIGGER)
