"""When and how soon to try again after a failure: every policy of the project, on tenacity.

- WAIT_FOR_DEPENDENCY: a broker or database that does not answer (yet) is asked again until it
  does or the process is told to stop (`wait_until_reachable`).
- RESTART_LOOP: a long-running task that ended in an error (a consumer loop or the relay during
  an outage) is started again (`retry_until_stopped`).
- RESTART_PROCESS: a child process of `orderflow run` that died is started again.
- LOST_RACE: a transaction that lost a race for a row (another writer changed it between the read
  and the write) is run again a few times, briefly (`retry_lost_race`).
- RedeliveryPolicy: what a consumer group does with a message whose handling failed, per group
  from settings (max_attempts, retry_base_delay, retry_max_delay, and `retry_policies` for one
  group's own): a permanent error (handler.is_permanent) dead-letters it at once; a transient one
  asks the broker to hold it back (`redelivery_delay`) and deliver it again, until the attempts
  run out. The broker's own delayed redelivery carries that out, so a failed message never
  blocks a consumer meanwhile.

Every wait is exponential with full jitter, so processes that failed together (a broker outage
ends for everyone at once) come back spread out instead of in lockstep. Waits end as soon as
`stop` is set, and no attempt starts after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

import structlog
import tenacity

from orderflow.ports.broker import DeadLetter, Retry
from orderflow.services.runtime.handler import is_permanent

log = structlog.get_logger()

T = TypeVar("T")
Errors = type[BaseException] | tuple[type[BaseException], ...]


@dataclass(frozen=True)
class Backoff:
    """After the n-th failure in a row, wait at random in [first/2, min(cap, first * 2**(n-1))]."""

    first: float
    cap: float

    def strategy(self) -> tenacity.wait.wait_base:
        return tenacity.wait_random_exponential(
            multiplier=self.first, min=self.first / 2, max=self.cap
        )

    def delay(self, failures: int) -> float:
        """The wait after `failures` failures in a row, for loops that do not fail by raising."""
        state = tenacity.RetryCallState(_NO_RETRYING, fn=None, args=(), kwargs={})
        state.attempt_number = max(failures, 1)
        return self.strategy()(state)


_NO_RETRYING = tenacity.Retrying()  # RetryCallState wants one; Backoff.delay never runs it

WAIT_FOR_DEPENDENCY = Backoff(first=0.5, cap=5.0)
RESTART_LOOP = Backoff(first=0.5, cap=5.0)
# Starting a process costs far more than starting a loop, and a crash loop fills the logs.
RESTART_PROCESS = Backoff(first=1.0, cap=10.0)


LOST_RACE = Backoff(first=0.005, cap=0.1)
LOST_RACE_ATTEMPTS = 5


async def retry_lost_race(
    transaction: Callable[[], Awaitable[T]], *, on: Errors, event: str, **context: object
) -> T:
    """`transaction()`'s result, run again (up to LOST_RACE_ATTEMPTS in all) while it fails with
    an error in `on`; the last such error propagates."""
    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type(on),
        wait=LOST_RACE.strategy(),
        stop=tenacity.stop_after_attempt(LOST_RACE_ATTEMPTS),
        before_sleep=functools.partial(_log_failure, event, logging.INFO, context),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            result = await transaction()
    return result


def redelivery_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds a message whose `attempt`-th delivery failed waits before the next one."""
    return Backoff(first=base, cap=cap).delay(attempt)


@dataclass(frozen=True)
class RedeliveryPolicy:
    """A consumer group's answer to a failed message: retry later, or dead-letter it."""

    max_attempts: int = 5
    backoff: Backoff = Backoff(first=0.2, cap=30.0)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not 0 < self.backoff.first <= self.backoff.cap:
            raise ValueError(
                f"retry delays must satisfy 0 < base <= max, got {self.backoff.first} and "
                f"{self.backoff.cap}"
            )

    def outcome(self, attempt: int, error: BaseException) -> Retry | DeadLetter:
        """After the `attempt`-th delivery failed with `error`."""
        reason = f"{type(error).__name__}: {error}"
        if is_permanent(error) or attempt >= self.max_attempts:
            return DeadLetter(reason)
        return Retry(self.backoff.delay(attempt))


class Stopped(enum.Enum):
    STOPPED = "stopped"


STOPPED = Stopped.STOPPED


async def retry_until_stopped(
    step: Callable[[], Awaitable[T]],
    stop: asyncio.Event,
    *,
    event: str,
    policy: Backoff = RESTART_LOOP,
    on: Errors = Exception,
    level: int = logging.WARNING,
    **context: object,
) -> T | Literal[Stopped.STOPPED]:
    """`step()`'s result, calling it again after each failure of a type in `on` (logged as
    `event` with the error, the wait and `context`); STOPPED if `stop` was set first. Other
    errors propagate. A running step is not interrupted: steps that run long watch `stop`
    themselves, so they can end gracefully."""
    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type(on),
        wait=policy.strategy(),
        sleep=functools.partial(_sleep_unless_stopped, stop),
        before_sleep=functools.partial(_log_failure, event, level, context),
        reraise=True,
    )
    async for attempt in retrying:
        if stop.is_set():
            return STOPPED
        with attempt:
            result = await step()
    return result


async def wait_until_reachable(
    name: str,
    probe: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    *,
    on: Errors = Exception,
    policy: Backoff = WAIT_FOR_DEPENDENCY,
) -> bool:
    """Call `probe` until it succeeds (True) or `stop` is set (False). A probe still running
    when `stop` is set is cancelled: a client that keeps connecting by itself (nats-py does)
    must not hold up a shutdown."""
    outcome = await retry_until_stopped(
        functools.partial(_unless_stopped, stop, probe),
        stop,
        event=f"{name} unreachable; retrying",
        policy=policy,
        on=on,
    )
    return outcome is not STOPPED and not stop.is_set()


async def _unless_stopped(stop: asyncio.Event, probe: Callable[[], Awaitable[object]]) -> None:
    attempt = asyncio.ensure_future(probe())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((attempt, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        await _cancel(attempt)
    if not attempt.cancelled():
        attempt.result()  # the probe's error, if it failed


async def _cancel(task: asyncio.Future[object]) -> None:
    # Again until it ends: on Python 3.11 asyncio.wait_for, which clients use inside connect,
    # drops a cancellation that arrives as the awaited call completes (nats-py then kept
    # connecting and the process never stopped).
    while not task.done():
        task.cancel()
        await asyncio.wait((task,), timeout=0.1)


async def _sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _log_failure(
    event: str, level: int, context: Mapping[str, object], state: tenacity.RetryCallState
) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.log(
        level,
        event,
        error=repr(error),
        failures=state.attempt_number,
        retry_in=round(state.upcoming_sleep, 3),
        **context,
    )
