"""The run as an SVG chart, written by hand: throughput per second above, latency percentiles
below (log scale, since a backlog takes latency from milliseconds to seconds). Plain SVG keeps
the tool free of a plotting library and opens in any browser."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

WIDTH, PANEL_HEIGHT = 900, 260
LEFT, RIGHT, TOP, GAP = 70, 160, 60, 60

Series = tuple[str, str, Sequence[float | None]]  # label, colour, one value per second


def render_svg(report: dict[str, Any]) -> str:
    s = report["series"]
    seconds = len(s["second"])
    throughput: list[Series] = [
        ("accepted/s", "#1f77b4", s["accepted"]),
        ("finished/s", "#2ca02c", s["finished"]),
        ("errors/s", "#d62728", s["errors"]),
    ]
    latency: list[Series] = [
        ("202 p50", "#9ecae1", s["accept_p50_ms"]),
        ("202 p99", "#1f77b4", s["accept_p99_ms"]),
        ("to final p50", "#a1d99b", s["final_p50_ms"]),
        ("to final p99", "#2ca02c", s["final_p99_ms"]),
    ]
    cfg = report["config"]
    load = f"{cfg['rate']:g} orders/s open loop" if cfg["mode"] == "open" else "flat out"
    height = TOP + 2 * PANEL_HEIGHT + GAP + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        _text(LEFT, 22, f"orderflow bench: {load}, started {report['started_at']}", size=14),
        *_panel(TOP, seconds, throughput, "orders per second", log=False),
        *_panel(
            TOP + PANEL_HEIGHT + GAP, seconds, latency, "latency, ms (by intended send)", log=True
        ),
        _text(
            LEFT + (WIDTH - LEFT - RIGHT) / 2, height - 8, "seconds since start", anchor="middle"
        ),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _panel(top: float, seconds: int, series: list[Series], title: str, log: bool) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, PANEL_HEIGHT - 30
    values = [v for _, _, vs in series for v in vs if v is not None and v > 0]
    if log:
        low = float(10 ** math.floor(math.log10(min(values)))) if values else 1.0
        high = float(10 ** math.ceil(math.log10(max(values)))) if values else 10.0
        high = max(high, low * 10)
        ticks = [low * 10**i for i in range(round(math.log10(high / low)) + 1)]

        def scale(v: float) -> float:
            return math.log10(max(v, low) / low) / math.log10(high / low)
    else:
        step = _nice(max(values, default=1.0) / 4)
        high = 4 * step
        ticks = [step * i for i in range(5)]

        def scale(v: float) -> float:
            return v / high

    def x(second: float) -> float:
        return LEFT + plot_w * (second + 0.5) / max(seconds, 1)

    def y(value: float) -> float:
        return top + plot_h * (1 - scale(value))

    out = [
        _text(LEFT, top - 8, title, size=13),
        f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="#999"/>',
    ]
    for tick in ticks:
        ty = y(tick)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#eee"/>'
        )
        out.append(
            _text(LEFT - 6, ty + 4, f"{tick:,.0f}" if tick >= 1 else f"{tick:g}", anchor="end")
        )
    for second in _x_ticks(seconds):
        out.append(_text(x(second), top + plot_h + 16, str(second), anchor="middle"))
    for row, (label, colour, vs) in enumerate(series):
        for run in _runs(vs):
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
            out.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8"/>'
            )
        ly = top + 14 + row * 18
        out.append(
            f'<line x1="{LEFT + plot_w + 12}" x2="{LEFT + plot_w + 32}" y1="{ly - 4}" '
            f'y2="{ly - 4}" stroke="{colour}" stroke-width="3"/>'
        )
        out.append(_text(LEFT + plot_w + 38, ly, label))
    return out


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Unbroken stretches of known values (a second without data breaks the line)."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, v))
    return [r for r in runs if r]


def _x_ticks(seconds: int) -> list[int]:
    step = _nice(seconds / 8) if seconds > 8 else 1
    return list(range(0, seconds, max(1, int(step))))


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n that is at least `value`."""
    if value <= 0:
        return 1.0
    magnitude = float(10 ** math.floor(math.log10(value)))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude


def _text(x: float, y: float, text: str, size: int = 12, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">'
        f"{escape(text)}</text>"
    )
