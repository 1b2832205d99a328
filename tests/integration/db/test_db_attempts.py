"""The attempts ledger on SQLite and PostgreSQL: what the consumer loop records comes back per
message, in the order it happened, with its error; other groups' and messages' stay apart."""

from __future__ import annotations

from orderflow.adapters.db.engine import Database
from orderflow.adapters.db.migrate import migrate
from orderflow.adapters.db.storage import SqlStorage
from orderflow.ports.attempts import FailedAttempt


async def test_attempts_come_back_per_message_in_order(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate(db)
        storage = SqlStorage(db)
        async with storage.write() as tx:
            await tx.attempts.record(
                [
                    FailedAttempt("payment", "m-1", 1, "retry", "TimeoutError: provider slow"),
                    FailedAttempt("inventory", "m-1", 1, "dead_letter", "other group"),
                    FailedAttempt("payment", "m-2", 1, "retry", "other message"),
                ]
            )
        async with storage.write() as tx:
            long_error = "PermanentError: " + "x" * 5000
            await tx.attempts.record(
                [FailedAttempt("payment", "m-1", 2, "dead_letter", long_error)]
            )
        async with storage.read() as reads:
            found = await reads.attempts.of("payment", ["m-1", "m-3"])

        assert list(found) == ["m-1"]
        first, second = found["m-1"]
        assert (first.attempt, first.outcome, first.error) == (
            1,
            "retry",
            "TimeoutError: provider slow",
        )
        assert (second.attempt, second.outcome) == (2, "dead_letter")
        assert second.error.startswith("PermanentError: xxx")
        assert len(second.error) == 2000
        assert first.failed_at is not None
        assert second.failed_at is not None
        assert first.failed_at <= second.failed_at
    finally:
        await db.dispose()
