"""The broker port: durable topics with consumer groups.

Promises every engine keeps (the contract suite in tests/contract checks each one):

- `publish` returns once the messages are durable; a message id seen before (within the engine's
  dedup window) is dropped, so a publisher may retry blindly.
- Each group declared on a topic gets every message published after the declaration; the members
  of a group (tasks or OS processes) share that group's messages.
- Messages with the same key reach a group in publish order, and a key's next message is not handed
  out while an earlier one is unsettled.
- A delivery that is not settled within `ack_wait` (the consumer crashed) is delivered again.
- `retry(delay)` makes a delivery available again after the delay; a delivery whose attempts
  reach `max_attempts` goes to the group's dead letters instead. An attempt is a delivery that
  reached a handler: what a member hands back unsettled when it stops or gives work up (its
  prefetch, what it held) is no attempt, however often workers restart.
- `fetch` never hands one consumer more than `max_in_flight` unsettled deliveries.
- Dead letters are named by (group, position). `replay_dead_letter` takes one out of the dead
  letters and delivers it again to that group only (as a first attempt, with its message id);
  replaying or discarding one that is no longer there answers False, so an admin repeating a
  command delivers it once.
- A group declared with `expires_after` is ephemeral: once none of its members has fetched for
  that many seconds (they all stopped or crashed), the engine deletes it with whatever it still
  holds, so a group unique to one process (the stream service's) leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    key: str
    message_id: str
    payload: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    topic: str
    key: str
    message_id: str
    payload: bytes
    attempt: int  # 1 on first delivery
    headers: Mapping[str, str]
    # Engine-private handle used to settle this delivery.
    receipt: object = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float  # seconds


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str


Outcome = Ack | Retry | DeadLetter


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    group: str
    topics: tuple[str, ...]
    max_in_flight: int = 256
    max_attempts: int = 5
    ack_wait: float = 30.0  # seconds before an unsettled delivery is handed out again
    # Ephemeral group: deleted by the engine after this many seconds without a fetching member.
    # None: durable, kept until deleted by hand (the workers' groups).
    expires_after: float | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    group: str
    topic: str
    key: str
    message_id: str
    payload: bytes
    attempts: int
    reason: str
    # Where it stands in its group's dead letters: grows with each one buried, so a reader can
    # go on after the last it read (`dead_letters(after=...)`).
    position: int = 0


class Consumer(Protocol):
    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        """Wait up to `timeout` seconds for at least one delivery; return at most `max_messages`."""
        ...

    async def settle(self, outcomes: Sequence[tuple[Delivery, Outcome]]) -> None: ...

    async def close(self) -> None: ...


class Broker(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def declare(self, spec: ConsumerSpec) -> None:
        """Create the group's durable subscription to its topics (idempotent)."""
        ...

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None: ...

    async def consumer(self, spec: ConsumerSpec) -> Consumer:
        """Join the group (declaring it if needed) as one more member."""
        ...

    async def dead_letters(
        self, group: str, limit: int = 100, after: int = 0
    ) -> list[DeadLetterRecord]:
        """The group's oldest `limit` dead letters whose position is past `after`."""
        ...

    async def dead_letter(self, group: str, position: int) -> DeadLetterRecord | None:
        """The group's dead letter at `position`, or None if there is none (any more)."""
        ...

    async def replay_dead_letter(self, group: str, position: int) -> bool:
        """Deliver the dead letter to its group again and remove it; False if it is gone."""
        ...

    async def discard_dead_letter(self, group: str, position: int) -> bool:
        """Remove the dead letter for good; False if it is gone."""
        ...

    async def ping(self) -> None:
        """Raise if the broker cannot be reached."""
        ...

    async def backlog(self, spec: ConsumerSpec) -> int:
        """How many messages the group has not settled yet (its queue depth, or lag): every one
        not handed out yet, and where the engine can tell, those handed out and not settled. A
        group that was never declared has none. For the metrics, sampled now and then."""
        ...
