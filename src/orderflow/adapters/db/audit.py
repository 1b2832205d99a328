"""Invariant checks over the order database (`orderflow audit`). Each query returns violations."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CHECKS: dict[str, str] = {
    "order status differs from its last timeline entry": """
        SELECT o.id FROM orders o JOIN order_events e ON e.order_id = o.id AND e.seq = o.version
        WHERE e.status <> o.status
        UNION ALL
        SELECT o.id FROM orders o
        WHERE NOT EXISTS (
            SELECT 1 FROM order_events e WHERE e.order_id = o.id AND e.seq = o.version)
    """,
    "timeline has gaps": """
        SELECT order_id FROM order_events GROUP BY order_id HAVING COUNT(*) <> MAX(seq)
    """,
    # Failed once more per admin resume (a replayed dead letter can fail again).
    "order entered the same terminal status twice": """
        SELECT e.order_id FROM order_events e
        WHERE e.status IN ('rejected', 'payment_failed', 'cancelled', 'failed', 'delivered')
          AND (e.previous_status IS NULL OR e.previous_status <> e.status)
        GROUP BY e.order_id, e.status
        HAVING COUNT(*) > 1 + CASE WHEN e.status = 'failed' THEN (
            SELECT COUNT(*) FROM order_events r
            WHERE r.order_id = e.order_id AND r.type = 'ProcessingResumed') ELSE 0 END
    """,
    "reserved stock differs from held reservations": """
        SELECT s.sku || '@' || s.warehouse FROM stock s
        WHERE s.reserved <> COALESCE((SELECT SUM(r.quantity) FROM reservations r
            WHERE r.sku = s.sku AND r.warehouse = s.warehouse AND r.status = 'held'), 0)
    """,
    "settled order still holds stock": """
        SELECT DISTINCT r.order_id FROM reservations r JOIN orders o ON o.id = r.order_id
        WHERE r.status = 'held'
          AND o.status IN ('confirmed', 'rejected', 'payment_failed', 'cancelled', 'failed')
    """,
    "confirmed order without exactly one capture": """
        SELECT o.id FROM orders o WHERE o.status IN ('paid', 'confirmed', 'shipped', 'delivered')
          AND (SELECT COUNT(*) FROM payments p WHERE p.order_id = o.id AND p.kind = 'capture') <> 1
    """,
    "capture does not match the order total": """
        SELECT o.id FROM orders o JOIN payments p ON p.order_id = o.id AND p.kind = 'capture'
        WHERE p.amount <> o.total_amount OR p.currency <> o.currency
    """,
    "money kept for an order that was not fulfilled": """
        SELECT o.id FROM orders o
        WHERE o.status IN ('rejected', 'payment_failed', 'cancelled', 'failed')
          AND EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.kind = 'capture')
          AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.kind = 'refund')
    """,
}


async def audit(conn: AsyncConnection) -> dict[str, list[str]]:
    """{check: offending ids} for every check that found something."""
    found: dict[str, list[str]] = {}
    for name, sql in CHECKS.items():
        rows = [str(r[0]) for r in await conn.execute(text(sql))]
        if rows:
            found[name] = rows
    return found


async def status_counts(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(text("SELECT status, COUNT(*) FROM orders GROUP BY status"))
    return {str(r[0]): int(r[1]) for r in rows}
