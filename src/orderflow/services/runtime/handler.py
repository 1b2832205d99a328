"""What a broker-driven service implements: a handler per consumer group.

    HandlerError
    ├── TransientError   try again later (backoff); dead-lettered when attempts run out
    └── PermanentError   will never succeed: dead-lettered at once, the order marked failed

A handler applies a whole batch at once (set-based reads and writes are what make a database
transaction per batch cheap) and answers per message: the messages it causes, or the error that
message met. Raising instead fails the batch; the runtime then retries it message by message, so
one poisonous message cannot hold up the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from orderflow.domain.messages import Message


class HandlerError(Exception):
    pass


class TransientError(HandlerError):
    pass


class PermanentError(HandlerError):
    pass


BatchResult = Sequence[Message] | Exception


@dataclass
class BatchContext:
    """One transaction shared by a batch of messages; `cache` lives as long as the batch."""

    conn: AsyncConnection
    cache: dict[str, Any] = field(default_factory=dict)


class Handler(Protocol):
    group: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]

    async def call_out(self, message: Message) -> object:
        """I/O outside the database transaction (e.g. a payment provider). Runs concurrently for a
        batch; its result is handed to `apply`. Raise TransientError to retry."""
        ...

    async def apply(
        self, ctx: BatchContext, batch: Sequence[tuple[Message, object]]
    ) -> list[BatchResult]:
        """Apply the batch inside one transaction; one result per message, in order."""
        ...
