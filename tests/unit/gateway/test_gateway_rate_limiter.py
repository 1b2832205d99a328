from __future__ import annotations

from orderflow.services.gateway.rate_limit import too_many_requests


def test_retry_after_header_rounds_up() -> None:
    error = too_many_requests(0.2)
    assert error.status == 429
    assert error.headers["Retry-After"] == "1"
    assert error.extra["reason"] == "rate_limited"
