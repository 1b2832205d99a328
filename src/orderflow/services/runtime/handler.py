"""What a broker-driven service implements: a handler per consumer group.

    HandlerError
    ├── TransientError   try again later (backoff); dead-lettered when attempts run out
    └── PermanentError   will never succeed: dead-lettered at once, the order marked failed

`is_permanent` classifies any error a handler raises: PermanentError and a broken domain rule
(DomainError: the same message breaks it again) are permanent; everything else (TransientError,
a timeout, a lost connection, a bug that a fix and a replay can cure) is transient.

A handler is generic over what its `call_out` answers (`Handler[None]` for one that calls out to
nothing), so `apply` receives that exact type and mypy checks the two agree. It applies a whole
batch at once (set-based reads and writes are what make a database transaction per batch cheap)
and answers per message: the messages it causes, or the error that message met. Raising instead
fails the batch; the runtime then retries it message by message, so one poisonous message cannot
hold up the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol, TypeVar

from orderflow.domain.errors import DomainError
from orderflow.domain.messages import Message
from orderflow.ports.storage import Writes


class HandlerError(Exception):
    pass


class TransientError(HandlerError):
    pass


class PermanentError(HandlerError):
    pass


def is_permanent(error: BaseException) -> bool:
    """True when trying the same message again cannot succeed."""
    return isinstance(error, PermanentError | DomainError)


BatchResult = Sequence[Message] | Exception

T = TypeVar("T")


class Handler(Protocol[T]):
    group: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]

    async def call_out(self, message: Message) -> T:
        """I/O outside the database transaction (e.g. a payment provider). Runs concurrently for a
        batch; its result is handed to `apply`. Raise TransientError to retry."""
        ...

    async def apply(self, tx: Writes, batch: Sequence[tuple[Message, T]]) -> list[BatchResult]:
        """Apply the batch inside one transaction; one result per message, in order."""
        ...
