"""A job run every so often beside the consumers, until the process is asked to stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


async def run_every(
    interval: float, job: Callable[[], Awaitable[object]], stop: asyncio.Event
) -> None:
    """Run `job`, then wait `interval` seconds (or until `stop`), and again. An error ends the
    loop: the worker set restarts it with backoff (bootstrap.WorkerSet)."""
    while not stop.is_set():
        await job()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
