"""The report as rich tables for the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

_LATENCY_COLUMNS = ("count", "p50", "p95", "p99", "max")


def render(report: dict[str, Any]) -> Group:
    return Group(_overview(report), _latencies(report))


def _overview(report: dict[str, Any]) -> Table:
    sub, proc = report["submission"], report["processing"]
    cfg = report["config"]
    load = f"{cfg['rate']:g}/s open loop" if cfg["mode"] == "open" else "closed loop, flat out"
    table = Table(
        title=f"orderflow bench: {load}, {cfg['connections']} connections, "
        f"{cfg['customers']} customers",
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("orders scheduled / sent", f"{sub['scheduled']} / {sub['sent']}")
    table.add_row("dropped by the client", str(sub["dropped_by_client"]))
    table.add_row("accepted (202)", str(sub["ok"]))
    table.add_row("errors", _counts(sub["errors"]) or "none")
    if sub["error_titles"]:
        table.add_row("errors by title", _counts(sub["error_titles"]))
    table.add_row("accepted/s", f"{sub['ok_per_s']:,.1f}")
    table.add_row("finished / unfinished", f"{proc['finished']} / {proc['unfinished']}")
    table.add_row("finished/s", f"{proc['finished_per_s']:,.1f}")
    table.add_row("final statuses", _counts(proc["final_statuses"]) or "none")
    ceiling = report.get("ceiling")
    if ceiling:
        table.add_row("bare endpoint ceiling", f"{ceiling['ok_per_s']:,.1f} 202/s")
        # At a fixed rate the ratio is at most rate / ceiling: only a --max run shows headroom.
        capped = " (rate-limited run)" if cfg["mode"] == "open" else ""
        table.add_row(
            f"submission / ceiling{capped}", f"{report.get('submission_to_ceiling', 0):.2f}"
        )
    reads = report.get("status_reads")
    if reads:
        table.add_row("status reads/s (ok)", f"{reads['ok_per_s']:,.1f}")
    return table


def _latencies(report: dict[str, Any]) -> Table:
    sub, proc = report["submission"], report["processing"]
    table = Table(title="latency (ms; from each order's intended send time)")
    table.add_column("measure")
    for name in _LATENCY_COLUMNS:
        table.add_column(name, justify="right")
    rows = [
        ("202 answer", sub["latency_ms"]),
        *((f"submit → {stage}", s) for stage, s in proc["stages_from_submit_ms"].items()),
        ("submit → final", proc["submit_to_final_ms"]),
        ("created → final (server)", proc["created_to_final_ms"]),
        ("client lag (sent late by)", sub["client_lag_ms"]),
    ]
    reads = report.get("status_reads")
    if reads:
        rows.append(("status read", reads["latency_ms"]))
    ceiling = report.get("ceiling")
    if ceiling:
        rows.append(("202 from the bare endpoint", ceiling["latency_ms"]))
    for label, summary in rows:
        table.add_row(label, *(f"{summary[c]:,}" for c in _LATENCY_COLUMNS))
    return table


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())
