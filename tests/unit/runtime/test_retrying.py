"""The retry policies: waits grow with jitter, failures are logged, and `stop` ends waiting at
once with no attempt after it."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from structlog.testing import capture_logs

from orderflow.domain.errors import InvalidTransitionError
from orderflow.ports.broker import DeadLetter, Retry
from orderflow.services.runtime.handler import PermanentError, TransientError
from orderflow.services.runtime.retrying import (
    RESTART_LOOP,
    RESTART_PROCESS,
    STOPPED,
    WAIT_FOR_DEPENDENCY,
    Backoff,
    RedeliveryPolicy,
    redelivery_delay,
    retry_until_stopped,
    wait_until_reachable,
)

FAST = Backoff(first=0.01, cap=0.02)
SLOW = Backoff(first=30.0, cap=60.0)  # a wait no test may sit out


@pytest.mark.parametrize("policy", [WAIT_FOR_DEPENDENCY, RESTART_LOOP, RESTART_PROCESS, FAST])
def test_waits_grow_with_jitter_up_to_the_cap(policy: Backoff) -> None:
    for failures in range(1, 12):
        high = min(policy.cap, policy.first * 2 ** (failures - 1))
        waits = {policy.delay(failures) for _ in range(50)}
        assert all(policy.first / 2 <= w <= high for w in waits), (failures, waits)
        assert len(waits) > 1  # jittered: failures at once do not retry at once


def test_redelivery_delay_follows_the_settings() -> None:
    delays = [redelivery_delay(attempt, 0.2, 30.0) for attempt in (1, 3, 20) for _ in range(50)]

    assert all(0.1 <= d <= 30.0 for d in delays)
    assert max(redelivery_delay(1, 0.2, 30.0) for _ in range(50)) <= 0.2
    assert max(redelivery_delay(20, 0.2, 30.0) for _ in range(200)) > 0.2


async def test_a_step_is_tried_again_until_it_succeeds_and_each_failure_is_logged() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError(f"down {calls}")
        return "done"

    with capture_logs() as logs:
        result = await retry_until_stopped(
            flaky, asyncio.Event(), event="it failed", policy=FAST, task="relay"
        )

    assert result == "done"
    assert [(e["event"], e["error"], e["failures"], e["task"]) for e in logs] == [
        ("it failed", "ConnectionError('down 1')", 1, "relay"),
        ("it failed", "ConnectionError('down 2')", 2, "relay"),
    ]
    assert all(0 < e["retry_in"] <= FAST.cap for e in logs)


async def test_errors_of_other_types_are_not_retried() -> None:
    async def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await retry_until_stopped(broken, asyncio.Event(), event="x", on=ConnectionError)


async def test_stop_ends_a_wait_at_once_and_no_attempt_follows() -> None:
    stop = asyncio.Event()
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        asyncio.get_running_loop().call_later(0.05, stop.set)
        raise ConnectionError("down")

    started = time.monotonic()
    result = await retry_until_stopped(failing, stop, event="x", policy=SLOW)

    assert result is STOPPED
    assert calls == 1
    assert time.monotonic() - started < 1.0


async def test_nothing_is_tried_once_stopped() -> None:
    stop = asyncio.Event()
    stop.set()

    async def never() -> None:
        raise AssertionError("tried after stop")

    assert await retry_until_stopped(never, stop, event="x") is STOPPED
    assert await wait_until_reachable("broker", never, stop) is False


async def test_waiting_for_a_dependency_ends_when_it_answers() -> None:
    answers = iter([ConnectionError("not yet"), None])

    async def probe() -> None:
        if error := next(answers):
            raise error

    with capture_logs() as logs:
        assert await wait_until_reachable("broker", probe, asyncio.Event(), policy=FAST)

    assert [e["event"] for e in logs] == ["broker unreachable; retrying"]


async def test_a_probe_that_hangs_is_cancelled_when_stop_is_set() -> None:
    """nats-py keeps connecting inside connect(): a shutdown must not wait for it."""
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def hanging() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cancelled.set()

    asyncio.get_running_loop().call_later(0.05, stop.set)
    started = time.monotonic()

    assert await wait_until_reachable("broker", hanging, stop) is False
    assert cancelled.is_set()
    assert time.monotonic() - started < 1.0


async def test_a_probe_that_swallows_a_cancellation_is_cancelled_again() -> None:
    """Python 3.11's asyncio.wait_for can drop a cancellation that races with its result."""
    stop = asyncio.Event()

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)

    asyncio.get_running_loop().call_later(0.05, stop.set)

    assert await asyncio.wait_for(wait_until_reachable("broker", stubborn, stop), 5) is False


class TestRedeliveryPolicy:
    policy = RedeliveryPolicy(max_attempts=3, backoff=Backoff(first=0.2, cap=1.0))

    @pytest.mark.parametrize(
        "error",
        [TransientError("provider down"), TimeoutError("slow"), ValueError("a bug, fixable")],
    )
    def test_a_transient_error_retries_with_backoff_until_attempts_run_out(
        self, error: Exception
    ) -> None:
        first, second = self.policy.outcome(1, error), self.policy.outcome(2, error)
        assert isinstance(first, Retry)
        assert 0.1 <= first.delay <= 0.2
        assert isinstance(second, Retry)
        assert 0.1 <= second.delay <= 0.4
        last = self.policy.outcome(3, error)
        assert last == DeadLetter(f"{type(error).__name__}: {error}")

    @pytest.mark.parametrize(
        "error", [PermanentError("unknown order"), InvalidTransitionError("paid -> pending")]
    )
    def test_a_permanent_error_dead_letters_at_once(self, error: Exception) -> None:
        assert self.policy.outcome(1, error) == DeadLetter(f"{type(error).__name__}: {error}")

    @pytest.mark.parametrize(
        ("attempts", "first", "cap"), [(0, 0.2, 1.0), (3, 0.0, 1.0), (3, 2.0, 1.0)]
    )
    def test_an_unusable_policy_is_refused(self, attempts: int, first: float, cap: float) -> None:
        with pytest.raises(ValueError, match="must"):
            RedeliveryPolicy(max_attempts=attempts, backoff=Backoff(first=first, cap=cap))
