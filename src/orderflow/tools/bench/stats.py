"""Percentiles and per-second series: plain sorted lists (a run holds at most a few million
samples, and sorting them once costs less than a dependency)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PERCENTILES = (50.0, 95.0, 99.0)


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 for no data)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float | int]:
    """count, p50, p95, p99 and max, in milliseconds rounded to 0.1."""
    ordered = sorted(seconds)
    out: dict[str, float | int] = {"count": len(ordered)}
    for p in PERCENTILES:
        out[f"p{p:g}"] = round(percentile(ordered, p) * 1000, 1)
    out["max"] = round(ordered[-1] * 1000, 1) if ordered else 0.0
    return out


def per_second(times: Iterable[float], seconds: int) -> list[int]:
    """How many of `times` (seconds since the start) fall in each whole second of the run."""
    counts = [0] * seconds
    for t in times:
        if 0 <= t < seconds:
            counts[int(t)] += 1
    return counts


def percentiles_per_second(
    points: Iterable[tuple[float, float]], seconds: int, p: float
) -> list[float | None]:
    """The p-th percentile (ms) of the values whose time falls in each second; None when empty."""
    buckets: list[list[float]] = [[] for _ in range(seconds)]
    for t, value in points:
        if 0 <= t < seconds:
            buckets[int(t)].append(value)
    return [round(percentile(sorted(b), p) * 1000, 1) if b else None for b in buckets]
