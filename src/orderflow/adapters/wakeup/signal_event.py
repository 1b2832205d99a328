"""What every wake-up adapter does once its listener has an event to wait on."""

from __future__ import annotations

import asyncio
import contextlib


async def take(event: asyncio.Event, timeout: float) -> bool:
    """Wait up to `timeout` for `event`, then clear it; True if it was set."""
    if not event.is_set():
        # asyncio.timeout, not wait_for: on 3.11 wait_for may swallow a cancellation that
        # races with the event being set, and a cancelled listener would then wait on.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
    signalled = event.is_set()
    event.clear()
    return signalled
