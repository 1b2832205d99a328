"""One client's subscription: its scope, a bounded buffer, and what it has been sent.

The fan-out never waits for a client: `offer` appends to the buffer or, when the buffer is full
(the client reads slower than its orders change), ends the subscription with a reason; the
client resumes from its last event id on a new connection.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable

from orderflow.ports.status_changes import Scope, StatusChange
from orderflow.services.stream.cursor import Cursor

# Orders whose last sent version a subscription remembers beyond the cursor's window, so a late
# duplicate from the broker (at-least-once) is not sent twice.
_REMEMBERED = 10_000
TOO_SLOW = "too_slow"


class Subscription:
    def __init__(self, scope: Scope, *, with_customer: bool, buffer: int) -> None:
        self.scope = scope
        self.with_customer = with_customer
        self.cursor = Cursor()
        self.closed: str | None = None  # why the subscription ended
        self._buffer: deque[StatusChange] = deque()
        self._capacity = buffer
        self._wake = asyncio.Event()
        self._sent: OrderedDict[str, int] = OrderedDict()
        self.on_close: Callable[[Subscription], None] = lambda _sub: None

    def offer(self, change: StatusChange) -> None:
        if self.closed is not None:
            return
        if len(self._buffer) >= self._capacity:
            self.close(TOO_SLOW)
            return
        self._buffer.append(change)
        self._wake.set()

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self._buffer.clear()
            self.on_close(self)  # out of the hub at once, even if its sender is stuck
        self._wake.set()

    async def take(self, timeout: float) -> list[StatusChange]:
        """What arrived, waiting up to `timeout` for something; [] on timeout or when closed."""
        if not self._buffer and self.closed is None:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return []
        taken = list(self._buffer)
        self._buffer.clear()
        return taken

    def accept(self, change: StatusChange) -> str | None:
        """The event id to send the change under, or None if it was sent (or covered) before."""
        if self._sent.get(change.order_id, 0) >= change.version:
            return None
        if self.cursor.covers(change.order_id, change.version, change.at):
            return None
        self.mark_sent(change)
        return self.cursor.encode()

    def mark_sent(self, change: StatusChange) -> None:
        self.cursor.advance(change.order_id, change.version, change.at)
        self._sent[change.order_id] = max(change.version, self._sent.get(change.order_id, 0))
        self._sent.move_to_end(change.order_id)
        if len(self._sent) > _REMEMBERED:
            self._sent.popitem(last=False)
