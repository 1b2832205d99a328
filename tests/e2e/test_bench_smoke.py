"""`orderflow bench` against a real `orderflow run`: a short open-loop run through the gateway,
with the bare-endpoint ceiling, status reads, the JSON report and the chart."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.support.system import System

ORDERS = 50


def test_a_short_bench_run_reports_every_order_finished(tmp_path: Path) -> None:
    system = System(tmp_path / "data")
    system.start()
    report_path, chart_path = tmp_path / "report.json", tmp_path / "chart.svg"
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "orderflow",
                "bench",
                "--url",
                system.public_url,
                "--rate",
                "50",
                "--orders",
                str(ORDERS),
                "--customers",
                "2",
                "--status-reads",
                "5",
                "--ceiling",
                "--ceiling-duration",
                "1",
                "--report",
                str(report_path),
                "--chart",
                str(chart_path),
                "--settle-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        system.stop()
    assert run.returncode == 0, run.stdout + run.stderr

    report = json.loads(report_path.read_text())
    sub, proc = report["submission"], report["processing"]
    assert sub["scheduled"] == ORDERS == sub["sent"] + sub["dropped_by_client"]
    assert sub["ok"] + sum(sub["errors"].values()) == sub["sent"]
    assert sub["ok"] == proc["accepted"] > 0
    assert proc["finished"] == proc["accepted"]
    assert proc["unfinished"] == 0
    assert sum(proc["final_statuses"].values()) == proc["finished"]
    assert proc["submit_to_final_ms"]["count"] == proc["finished"]
    assert sum(report["series"]["accepted"]) == sub["ok"]
    assert sum(report["series"]["finished"]) == proc["finished"]
    assert report["ceiling"]["ok"] > 0
    assert report["submission_to_ceiling"] > 0
    assert report["status_reads"]["ok"] > 0

    svg = ET.parse(chart_path).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.findall(".//{http://www.w3.org/2000/svg}polyline")
