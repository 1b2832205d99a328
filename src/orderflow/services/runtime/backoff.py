"""Retry delays: exponential backoff with full jitter (spreads retries of a burst apart)."""

from __future__ import annotations

import random


def retry_delay(attempt: int, base: float, cap: float) -> float:
    return random.uniform(base / 2, min(cap, base * 2 ** (attempt - 1)))
