"""The run's report as JSON-ready data: what was sent, what came back, what finished, and how
long each stage took. The table, the chart and the `--report` file are all drawn from it."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from orderflow.tools.bench.config import BenchConfig
from orderflow.tools.bench.samples import DROPPED, Recorder, Sample
from orderflow.tools.bench.stats import per_second, percentiles_per_second, summary_ms
from orderflow.tools.bench.tracking import OrderRecord

STAGES = ("reserved", "paid", "confirmed")


def requests_summary(recorder: Recorder, ok_status: int) -> dict[str, Any]:
    """Counts, rate and latency of one kind of request (orders, status reads, the ceiling)."""
    samples = recorder.samples
    ok = [s for s in samples if s.status == ok_status]
    answered = [s for s in samples if s.error != DROPPED]
    failed = [s for s in answered if s.status != ok_status]
    window = max((s.done for s in answered), default=0.0)
    return {
        "scheduled": len(samples),
        "sent": len(answered),
        "ok": len(ok),
        "dropped_by_client": sum(1 for s in samples if s.error == DROPPED),
        "errors": dict(sorted(Counter(s.outcome for s in failed).items())),
        # The same, told apart by the problem+json title (a 422 may be a reused key or a price).
        "error_titles": dict(
            sorted(Counter(f"{s.outcome} {s.title}" for s in failed if s.title).items())
        ),
        "seconds": round(window, 3),
        "ok_per_s": round(len(ok) / window, 1) if window > 0 else 0.0,
        "latency_ms": summary_ms(s.latency for s in ok),
        # How late the generator itself sent requests: large values mean the client, not the
        # server, was the bottleneck (the latency above still counts that time).
        "client_lag_ms": summary_ms(s.sent - s.intended for s in answered),
    }


def build_report(
    config: BenchConfig,
    orders: Recorder,
    reads: Recorder | None,
    records: list[OrderRecord],
    unfinished: list[str],
    ceiling: dict[str, Any] | None,
) -> dict[str, Any]:
    submission = requests_summary(orders, 202)
    by_id = {s.order_id: s for s in orders.accepted}
    wall = orders.wall_start

    def since_intended(record: OrderRecord, at: float) -> float:
        return at - (wall + by_id[record.order_id].intended)

    last_finish = max((r.finished for r in records), default=wall)
    processing = {
        "accepted": len(orders.accepted),
        "finished": len(records),
        "unfinished": len(unfinished),
        "unfinished_ids": unfinished[:20],
        "finished_per_s": round(len(records) / (last_finish - wall), 1)
        if records and last_finish > wall
        else 0.0,
        "final_statuses": dict(sorted(Counter(r.status for r in records).items())),
        "submit_to_final_ms": summary_ms(since_intended(r, r.finished) for r in records),
        # Server clock only: unaffected by client/server clock skew or client-side waiting.
        "created_to_final_ms": summary_ms(r.finished - r.created for r in records),
        "stages_from_submit_ms": {
            stage: summary_ms(
                since_intended(r, r.reached[stage]) for r in records if stage in r.reached
            )
            for stage in STAGES
        },
    }
    report: dict[str, Any] = {
        "started_at": datetime.fromtimestamp(wall, UTC).isoformat(),
        "config": config.as_json(),
        "submission": submission,
        "processing": processing,
        "status_reads": requests_summary(reads, 200) if reads and reads.samples else None,
        "ceiling": ceiling,
        "series": _series(orders.samples, records, by_id, wall),
    }
    if ceiling and ceiling.get("ok_per_s"):
        report["submission_to_ceiling"] = round(submission["ok_per_s"] / ceiling["ok_per_s"], 3)
    return report


def _series(
    samples: list[Sample],
    records: list[OrderRecord],
    by_id: dict[str | None, Sample],
    wall: float,
) -> dict[str, list[Any]]:
    """Per second of the run: throughput by when it happened, latency by when it was due."""
    accepted = [s for s in samples if s.status == 202]
    finish_times = [r.finished - wall for r in records]
    end = max([s.done for s in samples] + finish_times + [0.0])
    seconds = max(1, math.ceil(end))
    to_final = [
        (by_id[r.order_id].intended, r.finished - wall - by_id[r.order_id].intended)
        for r in records
    ]
    return {
        "second": list(range(seconds)),
        "accepted": per_second((s.done for s in accepted), seconds),
        "finished": per_second(finish_times, seconds),
        "errors": per_second((s.done for s in samples if s.status != 202), seconds),
        "accept_p50_ms": percentiles_per_second(
            ((s.intended, s.latency) for s in accepted), seconds, 50
        ),
        "accept_p99_ms": percentiles_per_second(
            ((s.intended, s.latency) for s in accepted), seconds, 99
        ),
        "final_p50_ms": percentiles_per_second(to_final, seconds, 50),
        "final_p99_ms": percentiles_per_second(to_final, seconds, 99),
    }
