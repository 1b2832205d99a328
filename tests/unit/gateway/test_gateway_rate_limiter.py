from __future__ import annotations

from orderflow.services.gateway.rate_limit import RateLimiter, too_many_requests


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(limit=2, window=60, clock=clock)
    assert limiter.check_and_hit("ip") is None
    clock.now += 10
    assert limiter.check_and_hit("ip") is None
    assert limiter.check_and_hit("ip") == 50
    assert limiter.check_and_hit("other") is None
    clock.now += 50
    assert limiter.check_and_hit("ip") is None  # the first hit slid out
    assert limiter.retry_after("ip") == 10


def test_retry_after_header_rounds_up() -> None:
    error = too_many_requests(0.2)
    assert error.status == 429
    assert error.headers["Retry-After"] == "1"


def test_memory_is_bounded() -> None:
    clock = FakeClock()
    limiter = RateLimiter(limit=1, window=60, clock=clock, max_keys=100)
    for i in range(1000):
        limiter.hit(f"k{i}")
    assert len(limiter._hits) <= 100
