"""One bench run from start to end: customers, catalog, (ceiling,) load with live progress,
completion, report, table, files."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from orderflow.tools.bench.ceiling import measure_ceiling
from orderflow.tools.bench.chart import render_svg
from orderflow.tools.bench.config import BenchConfig
from orderflow.tools.bench.customers import (
    Customer,
    keep_fresh,
    login_customers,
    signed_customers,
)
from orderflow.tools.bench.load import OrderLoad, status_reads
from orderflow.tools.bench.mix import OrderMix, ample_skus
from orderflow.tools.bench.report import build_report
from orderflow.tools.bench.samples import Recorder
from orderflow.tools.bench.table import render
from orderflow.tools.bench.tracking import CompletionTracker

# The closed loop's order count is unknown in advance; this bounds it for choosing products
# with enough stock (well above what one API process accepts per second today).
_MAX_RATE_GUESS = 3000
_TRACKING_CONNECTIONS = 16


async def run_bench(config: BenchConfig, console: Console) -> dict[str, Any]:
    # aiohttp rather than httpx: the generator shares the machine with the system under test,
    # and aiohttp spends several times less CPU per request. Connections are kept alive.
    connector = aiohttp.TCPConnector(limit=config.connections)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(config.url, connector=connector, timeout=timeout) as client:
        customers = await _customers(client, config)
        skus = await ample_skus(
            client, customers[0].headers, _expected_orders(config) * config.max_quantity
        )
        console.print(f"{len(customers)} customers ready; ordering from {len(skus)} products")
        ceiling = None
        if config.ceiling:
            # First, while the system under test is idle (afterwards it may still be working
            # through a backlog and would share the cores with the bare endpoint).
            console.print(f"measuring the bare endpoint for {config.ceiling_duration:g} s ...")
            ceiling = await measure_ceiling(
                customers,
                _mix(config, skus, config.seed + 1),
                config.connections,
                config.ceiling_duration,
            )
        keeper = asyncio.create_task(keep_fresh(client, customers))
        # Tracking reads get connections of their own: they must neither wait behind the load
        # nor take a connection from it.
        tracking = aiohttp.ClientSession(
            config.url, connector=aiohttp.TCPConnector(limit=_TRACKING_CONNECTIONS), timeout=timeout
        )
        try:
            orders, reads, records, unfinished = await _drive(
                client, tracking, customers, _mix(config, skus, config.seed), config, console
            )
        finally:
            await tracking.close()
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
    return build_report(config, orders, reads, records, unfinished, ceiling)


def write_outputs(report: dict[str, Any], config: BenchConfig, console: Console) -> None:
    console.print(render(report))
    if config.report:
        config.report.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        console.print(f"report: {config.report}")
    if config.chart:
        config.chart.write_text(render_svg(report))
        console.print(f"chart: {config.chart}")


async def _drive(
    client: aiohttp.ClientSession,
    tracking: aiohttp.ClientSession,
    customers: list[Customer],
    mix: OrderMix,
    config: BenchConfig,
    console: Console,
) -> tuple[Recorder, Recorder, Any, list[str]]:
    orders = Recorder()
    reads = Recorder(started=orders.started, wall_start=orders.wall_start)
    load = OrderLoad(client, customers, mix, orders, config.idempotency_keys)
    tracker = CompletionTracker(tracking, customers, orders.accepted, _TRACKING_CONNECTIONS)
    stop = asyncio.Event()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=16),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=console) as progress:
        sending = progress.add_task("sending ", total=_progress_total(config), counts="")
        ticker = asyncio.create_task(_tick(progress, sending, config, orders, reads, tracker))
        background = [
            asyncio.create_task(tracker.probe(stop)),
            asyncio.create_task(status_reads(client, customers, config.status_reads, reads, stop)),
        ]
        if config.mode == "open":
            await load.open_loop(config.rate, config.orders, config.duration, config.max_in_flight)
        else:
            await load.closed_loop(config.connections, config.orders, config.duration)
        stop.set()
        await asyncio.gather(*background)
        ticker.cancel()
        _show(progress, sending, config, orders, reads, tracker)
        settling = progress.add_task("settling", total=len(orders.accepted), counts="")
        collecting = asyncio.create_task(tracker.collect(config.settle_timeout))
        while not collecting.done():
            progress.update(settling, completed=tracker.finished_estimate)
            await asyncio.wait({collecting}, timeout=0.2)
        records, unfinished = collecting.result()
        progress.update(
            settling,
            completed=len(records),
            counts=f"finished {len(records)}  unfinished {len(unfinished)}",
        )
    return orders, reads, records, unfinished


async def _tick(
    progress: Progress,
    task: TaskID,
    config: BenchConfig,
    orders: Recorder,
    reads: Recorder,
    tracker: CompletionTracker,
) -> None:
    while True:
        _show(progress, task, config, orders, reads, tracker)
        await asyncio.sleep(0.2)


def _show(
    progress: Progress,
    task: TaskID,
    config: BenchConfig,
    orders: Recorder,
    reads: Recorder,
    tracker: CompletionTracker,
) -> None:
    counts = (
        f"sent {orders.sent}  accepted {orders.ok}  finished≈{tracker.finished_estimate}  "
        f"errors {orders.failed}  dropped {orders.dropped}  in flight {orders.in_flight}"
    )
    if config.status_reads:
        counts += f"  reads {reads.ok}"
    done: float = orders.sent + orders.dropped
    if config.orders is None and config.mode == "max":
        done = min(orders.now(), config.duration or 0.0)
    progress.update(task, completed=done, counts=counts)


def _progress_total(config: BenchConfig) -> float:
    if config.orders is not None:
        return config.orders
    if config.mode == "open":
        return int(config.rate * (config.duration or 0.0))
    return config.duration or 0.0


def _expected_orders(config: BenchConfig) -> int:
    if config.orders is not None:
        return config.orders
    rate = config.rate if config.mode == "open" else _MAX_RATE_GUESS
    return int(rate * (config.duration or 0.0))


async def _customers(client: aiohttp.ClientSession, config: BenchConfig) -> list[Customer]:
    if config.direct:
        if config.key_dir is None:
            raise ValueError("--direct needs the data dir that holds the gateway's keys")
        return signed_customers(config.key_dir, config.customers)
    return await login_customers(client, config.customers, config.email_prefix, config.password)


def _mix(config: BenchConfig, skus: list[str], seed: int) -> OrderMix:
    return OrderMix(
        skus,
        config.customers,
        config.lines,
        config.max_quantity,
        config.decline_share,
        config.transient_share,
        seed,
    )
