"""Consumer idempotency: which message ids a consumer has already applied."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class ProcessedMessages(Protocol):
    """One consumer's applied message ids."""

    async def seen(self, message_ids: Sequence[str]) -> set[str]: ...

    async def mark(self, message_ids: Sequence[str]) -> None: ...

    async def forget(self, message_ids: Sequence[str]) -> None:
        """Unmark these ids (unknown ones are no error)."""
        ...


class ProcessedRetention(Protocol):
    async def prune(self, before: datetime, *, keep: Sequence[str], limit: int) -> int:
        """Forget up to `limit` ids applied before `before`, except the `keep` consumers' ids;
        returns how many."""
        ...
