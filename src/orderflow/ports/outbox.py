"""The transactional outbox: messages written with the state change that caused them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orderflow.ports.broker import OutgoingMessage


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    message: OutgoingMessage


class Outbox(Protocol):
    async def add(self, messages: Sequence[OutgoingMessage]) -> None: ...

    async def oldest(self, limit: int, *, claim: bool = False) -> list[OutboxRow]:
        """The oldest rows. `claim` (in a write transaction, where the storage claims rows): lock
        them until the transaction ends and skip rows another relay has claimed."""
        ...

    async def remove(self, ids: Sequence[int]) -> None: ...

    async def depth(self, cap: int) -> int:
        """How many rows wait, counting no further than `cap` (a backlog stays cheap to count)."""
        ...
