"""BacklogGate: refuses while the last reading of the backlog is past the bound, and the hot path
never reads the database (readings happen on their own clock, not per order)."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from orderflow.services.orders.backlog import BacklogFullError, BacklogGate
from tests.unit.services.fakes import FakeStorage


async def test_checks_never_read_the_backlog_only_the_background_readings_do() -> None:
    storage = FakeStorage()
    gate = BacklogGate(storage, bound=100, interval=3600)
    await gate.start()
    try:
        for _ in range(1000):
            gate.check()
        assert storage.state.backlog_reads == 1  # the first reading, at start
    finally:
        await gate.stop()


async def test_past_the_bound_it_refuses_with_a_retry_time_and_lets_through_once_drained() -> None:
    storage = FakeStorage()
    storage.state.backlog = 101
    gate = BacklogGate(storage, bound=100, interval=3600)
    await gate.start()
    try:
        with pytest.raises(BacklogFullError) as refused:
            gate.check()
        assert refused.value.retry_after >= 1
        storage.state.backlog = 100
        await gate.refresh()
        gate.check()
    finally:
        await gate.stop()


async def test_readings_come_by_themselves_every_interval() -> None:
    storage = FakeStorage()
    gate = BacklogGate(storage, bound=5, interval=0.01)
    await gate.start()
    try:
        storage.state.backlog = 6

        async def refused() -> None:
            while True:
                try:
                    gate.check()
                except BacklogFullError:
                    return
                await asyncio.sleep(0.01)

        await asyncio.wait_for(refused(), 10)
    finally:
        await gate.stop()


async def test_a_failed_reading_keeps_the_last_one_and_says_so() -> None:
    storage = FakeStorage()
    storage.state.backlog = 50
    gate = BacklogGate(storage, bound=10, interval=3600)
    await gate.start()
    try:
        storage.state.backlog_error = ConnectionError("database unreachable")
        with capture_logs() as logs:
            await gate.refresh()
        assert gate.size == 50
        with pytest.raises(BacklogFullError):
            gate.check()
        assert [e["event"] for e in logs] == ["backlog reading failed; keeping the last one"]
    finally:
        await gate.stop()


async def test_a_bound_of_zero_is_off_and_never_reads() -> None:
    storage = FakeStorage()
    storage.state.backlog = 10**9
    gate = BacklogGate(storage, bound=0)
    await gate.start()
    gate.check()
    await gate.stop()
    assert storage.state.backlog_reads == 0
