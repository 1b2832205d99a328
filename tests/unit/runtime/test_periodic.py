"""run_every: the guards' loop runs its job until asked to stop, and lets an error out (the
worker set restarts the loop with backoff) instead of hiding it."""

from __future__ import annotations

import asyncio

import pytest

from orderflow.services.runtime.periodic import run_every


async def test_the_job_runs_again_until_stop_is_set() -> None:
    stop = asyncio.Event()
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            stop.set()

    await asyncio.wait_for(run_every(0.001, job, stop), 10)
    assert runs == 3


async def test_a_stop_ends_the_wait_between_runs_at_once() -> None:
    stop = asyncio.Event()

    async def job() -> None:
        asyncio.get_running_loop().call_soon(stop.set)

    await asyncio.wait_for(run_every(3600, job, stop), 10)


async def test_an_error_of_the_job_ends_the_loop_with_it() -> None:
    async def job() -> None:
        raise ConnectionError("database unreachable")

    with pytest.raises(ConnectionError):
        await asyncio.wait_for(run_every(0.001, job, asyncio.Event()), 10)
