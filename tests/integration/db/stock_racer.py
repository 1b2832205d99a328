"""One of the processes racing for the last units (run by test_db_stock.py, not by pytest).

`python -m tests.integration.db.stock_racer URL BATCHES START_AT` waits until the wall clock
reaches START_AT, so every racer begins at once, then reserves BATCHES batches of BATCH orders of
one scarce unit each, one transaction per batch as the inventory worker applies them, through its
own handler and repository. Prints a JSON line: the order ids it reserved, the ids it was
refused, and any error it hit.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import orjson

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.storage import SqlStorage
from orderflow.domain import messages as m
from orderflow.services.inventory.handler import InventoryHandler

BATCH = 4


async def race(url: str, batches: int, start_at: float) -> dict[str, list[str]]:
    db = Database(url, pool_size=1)
    storage = SqlStorage(db)
    handler = InventoryHandler()
    outcome: dict[str, list[str]] = {"reserved": [], "rejected": [], "errors": []}
    try:
        async with db.read() as conn:  # connect before the start line
            await conn.exec_driver_sql("SELECT 1")
        await asyncio.sleep(max(0.0, start_at - time.time()))
        lines = (m.Line("LIMITED-TEE", 1), m.Line("MUG-WHT", 1))
        for _ in range(batches):
            oids = [str(uuid.uuid4()) for _ in range(BATCH)]
            try:
                async with storage.write() as tx:
                    results = await handler.apply(
                        tx, [(m.ReserveStock(oid, lines), None) for oid in oids]
                    )
            except Exception as exc:
                outcome["errors"].append(repr(exc))
                continue
            for oid, result in zip(oids, results, strict=True):
                match result:
                    case [m.StockReserved()]:
                        outcome["reserved"].append(oid)
                    case [m.StockRejected()]:
                        outcome["rejected"].append(oid)
                    case _:
                        outcome["errors"].append(repr(result))
    finally:
        await db.dispose()
    return outcome


if __name__ == "__main__":
    url, batches, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    sys.stdout.write(orjson.dumps(asyncio.run(race(url, batches, start_at))).decode() + "\n")
