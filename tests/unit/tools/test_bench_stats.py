from __future__ import annotations

from orderflow.tools.bench.stats import per_second, percentile, percentiles_per_second, summary_ms


def test_nearest_rank_percentiles() -> None:
    ordered = [float(i) for i in range(1, 101)]
    assert percentile(ordered, 50) == 50.0
    assert percentile(ordered, 99) == 99.0
    assert percentile(ordered, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0


def test_summary_in_milliseconds() -> None:
    assert summary_ms([0.003, 0.001, 0.002]) == {
        "count": 3,
        "p50": 2.0,
        "p95": 3.0,
        "p99": 3.0,
        "max": 3.0,
    }
    assert summary_ms([])["count"] == 0


def test_per_second_buckets_ignore_times_outside_the_run() -> None:
    assert per_second([0.1, 0.9, 1.0, 2.5, -1.0, 3.0], 3) == [2, 1, 1]
    assert percentiles_per_second([(0.2, 0.01), (0.4, 0.03), (2.1, 0.5)], 3, 50) == [
        10.0,
        None,
        500.0,
    ]
