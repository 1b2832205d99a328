"""The attempts ledger: every failed attempt at a message, with its error, per consumer group.

Kept in the order database, not the broker: it must read the same on every engine and survive
restarts, and the consumer loop records an attempt in the very transaction that decided its fate
(retry later or dead-letter), so the ledger and the outcome never disagree. An attempt that ended
without a decision (a worker killed holding the message) has no entry; its dead letter's reason
says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

AttemptOutcome = Literal["retry", "dead_letter"]


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    group: str
    message_id: str
    attempt: int  # the broker's attempt number (a replay starts again at 1)
    outcome: AttemptOutcome
    error: str  # the exception's type and message
    failed_at: datetime | None = None  # set by the store


class AttemptLog(Protocol):
    async def record(self, attempts: Sequence[FailedAttempt]) -> None: ...

    async def of(self, group: str, message_ids: Sequence[str]) -> dict[str, list[FailedAttempt]]:
        """Each message's failed attempts in the order they happened (none: no key)."""
        ...
