"""The outbox's depth on SQLite and PostgreSQL: counted up to a cap, and sampled into the metrics
by the relay's sampler when Prometheus scrapes."""

from __future__ import annotations

from pathlib import Path

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import migrate
from orderflow.adapters.db.storage import SqlStorage
from orderflow.bootstrap import build_broker
from orderflow.config import Settings
from orderflow.observability import metrics
from orderflow.observability.exposition import render
from orderflow.ports.broker import OutgoingMessage
from orderflow.services.relay.relay import OutboxRelay


async def test_depth_is_counted_up_to_the_cap_and_sampled_on_scrape(
    database_url: str, tmp_path: Path
) -> None:
    storage = SqlStorage(Database(database_url))
    try:
        await migrate(storage.db)
        async with storage.write() as tx:
            await tx.outbox.add(
                [OutgoingMessage("orders.test", "k", f"m-{i}", b"{}") for i in range(7)]
            )
        async with storage.read() as reads:
            assert await reads.outbox.depth(100) == 7
            assert await reads.outbox.depth(3) == 3

        relay = OutboxRelay(storage, build_broker(Settings(data_dir=tmp_path)))
        metrics.outbox_depth(-1)
        remove = metrics.add_sampler(relay.sample_depth)
        try:
            text = (await render()).decode()
        finally:
            remove()
        assert "orderflow_outbox_depth 7.0" in text.splitlines()
    finally:
        await storage.dispose()
