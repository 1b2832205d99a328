"""The report and chart from made-up samples: counts add up, latency runs from the intended send."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orderflow.tools.bench.chart import render_svg
from orderflow.tools.bench.config import BenchConfig
from orderflow.tools.bench.report import build_report
from orderflow.tools.bench.samples import DROPPED, Recorder, Sample
from orderflow.tools.bench.tracking import OrderRecord

WALL = 1_700_000_000.0


def _recorder() -> Recorder:
    rec = Recorder(started=0.0, wall_start=WALL)
    for i in range(10):
        s = Sample(
            i,
            i % 2,
            intended=i * 0.1,
            sent=i * 0.1,
            done=i * 0.1 + 0.05,
            status=202,
            order_id=f"o{i}",
        )
        rec.samples.append(s)
        rec.accepted.append(s)
    rec.samples.append(Sample(10, 0, 1.0, 1.0, 1.02, status=503))
    rec.samples.append(Sample(11, 0, 1.1, 1.1, 1.2, error="transport: ServerDisconnectedError"))
    rec.samples.append(Sample(12, -1, 1.2, 1.2, 1.2, error=DROPPED))
    return rec


def _records() -> list[OrderRecord]:
    out = []
    for i in range(10):
        due = WALL + i * 0.1
        reached = {"pending": due + 0.04, "reserved": due + 0.2, "paid": due + 0.3}
        status = "payment_failed" if i == 3 else "confirmed"
        reached[status] = due + 0.4
        out.append(OrderRecord(f"o{i}", status, due + 0.04, reached))
    return out


def test_counts_add_up_and_latency_counts_from_the_intended_send() -> None:
    report = build_report(
        BenchConfig(url="http://x", orders=13), _recorder(), None, _records(), [], None
    )
    sub, proc = report["submission"], report["processing"]
    assert (sub["scheduled"], sub["sent"], sub["ok"], sub["dropped_by_client"]) == (13, 12, 10, 1)
    assert sub["errors"] == {"503": 1, "transport: ServerDisconnectedError": 1}
    assert sub["latency_ms"]["p50"] == 50.0
    assert proc["final_statuses"] == {"confirmed": 9, "payment_failed": 1}
    assert proc["submit_to_final_ms"]["max"] == 400.0
    assert proc["created_to_final_ms"]["max"] == 360.0
    assert proc["stages_from_submit_ms"]["reserved"]["p50"] == 200.0
    assert proc["stages_from_submit_ms"]["confirmed"]["count"] == 9
    assert sum(report["series"]["accepted"]) == 10
    assert sum(report["series"]["errors"]) == 3


def test_the_chart_is_well_formed_svg_even_without_data() -> None:
    for records in (_records(), []):
        report = build_report(
            BenchConfig(url="http://x", mode="max", orders=13), _recorder(), None, records, [], None
        )
        root = ET.fromstring(render_svg(report))
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
