"""Wake-ups across processes: a writer says "there is work on this channel" after its commit, and
a waiter in another process (the relay, a broker's fetch) hears it at once instead of polling.

    wakeup.signal(OUTBOX)                      # after the commit; never blocks, best effort
    if await wakeup.wait(OUTBOX, timeout=1.0): # True: signalled since the last wait returned
        ...

A signal is a hint, not a message: it may be lost (a waiter not yet listening, a database
outage), so every waiter still polls slowly as a safety net. A signal that arrives while nobody
waits is kept until the next `wait` on that channel in that process (one waiter per channel per
process), so a signal racing with the waiter's own work is never lost.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

OUTBOX = "outbox"  # the outbox has rows to publish


class Wakeup(Protocol):
    def signal(self, channel: str) -> None:
        """Wake the waiters on `channel` in every process (this one included)."""
        ...

    async def wait(self, channel: str, timeout: float) -> bool:
        """Wait for a signal on `channel`: True if one came, False after `timeout` seconds."""
        ...

    async def close(self) -> None: ...


class NoWakeup:
    """Signals go nowhere and waits last their timeout: polling alone."""

    def signal(self, channel: str) -> None:
        pass

    async def wait(self, channel: str, timeout: float) -> bool:
        await asyncio.sleep(timeout)
        return False

    async def close(self) -> None:
        pass
