"""The wake-up contract every adapter of ports/wakeup.py keeps, run per adapter by a subclass.

A subclass provides `make_wakeup` (a fresh adapter for this test: all it makes share one
deployment) and `child_factory` (Python source building the same adapter in another process).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from orderflow.ports.wakeup import Wakeup

WakeupFactory = Callable[[], Awaitable[Wakeup]]

# Generous for a loaded 2-core machine; a working adapter answers in about a millisecond.
PROMPT = 0.5

_CHILD = """
import asyncio, sys
from orderflow.adapters.wakeup import PostgresWakeup, UnixSocketWakeup

async def main():
    wakeup = {factory}
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        wakeup.signal(line.strip())
    await wakeup.close()

asyncio.run(main())
"""


def fresh_channel() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


class WakeupContract:
    @pytest.fixture
    def child_factory(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def make_wakeup(self) -> WakeupFactory:
        raise NotImplementedError

    async def test_a_signal_from_another_process_wakes_a_waiter_promptly(
        self, make_wakeup: WakeupFactory, child_factory: str
    ) -> None:
        channel = fresh_channel()
        waiter = await make_wakeup()
        assert not await waiter.wait(channel, 0.05)  # listening from now on
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD.format(factory=child_factory),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
            for _ in range(3):  # each signal wakes one wait: none is lost or merged away
                woken = asyncio.create_task(waiter.wait(channel, 10.0))
                await asyncio.sleep(0.05)
                sent = time.monotonic()
                child.stdin.write(f"{channel}\n".encode())
                await child.stdin.drain()
                assert await woken
                assert time.monotonic() - sent < PROMPT
        finally:
            child.stdin.close()
            await asyncio.wait_for(child.wait(), 30)
            await waiter.close()
        assert child.returncode == 0

    async def test_a_waiter_wakes_by_its_timeout_when_no_signal_comes(
        self, make_wakeup: WakeupFactory
    ) -> None:
        channel = fresh_channel()
        waiter = await make_wakeup()
        other = await make_wakeup()
        try:
            assert not await waiter.wait(channel, 0.05)
            other.signal(fresh_channel())  # another channel does not wake it
            started = time.monotonic()
            assert not await waiter.wait(channel, 0.3)
            assert 0.25 <= time.monotonic() - started < 0.3 + PROMPT
        finally:
            await other.close()
            await waiter.close()

    async def test_a_signal_while_nobody_waits_is_kept_for_the_next_wait(
        self, make_wakeup: WakeupFactory
    ) -> None:
        channel = fresh_channel()
        waiter = await make_wakeup()
        signaller = await make_wakeup()
        try:
            assert not await waiter.wait(channel, 0.05)
            signaller.signal(channel)
            await asyncio.sleep(0.2)  # delivered while the waiter is busy elsewhere
            started = time.monotonic()
            assert await waiter.wait(channel, 5.0)
            assert time.monotonic() - started < PROMPT
            assert not await waiter.wait(channel, 0.05)  # and kept once, not forever
        finally:
            await signaller.close()
            await waiter.close()

    async def test_a_signal_wakes_a_waiter_in_the_same_process(
        self, make_wakeup: WakeupFactory
    ) -> None:
        channel = fresh_channel()
        wakeup = await make_wakeup()
        try:
            assert not await wakeup.wait(channel, 0.05)
            woken = asyncio.create_task(wakeup.wait(channel, 5.0))
            await asyncio.sleep(0.05)
            wakeup.signal(channel)
            assert await asyncio.wait_for(woken, PROMPT + 0.5)
        finally:
            await wakeup.close()
