"""The `orderflow bench` command line (registered by `orderflow.cli`).

Only typer is imported here: the rest of the bench loads when the command runs, so it adds
nothing to the start-up time or memory of the other `orderflow` commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def bench(
    url: Annotated[str, typer.Option(help="The gateway (or, with --direct, the API).")] = (
        "http://127.0.0.1:8080"
    ),
    rate: Annotated[
        float, typer.Option(help="Open loop: orders per second on a fixed timetable.")
    ] = 100.0,
    duration: Annotated[float, typer.Option(help="Seconds of arrivals (unless --orders).")] = 10.0,
    orders: Annotated[
        int | None, typer.Option(help="Submit this many orders instead of running --duration.")
    ] = None,
    flat_out: Annotated[
        bool,
        typer.Option(
            "--max",
            help="Closed loop: --connections workers each submit back to back (the ceiling).",
        ),
    ] = False,
    connections: Annotated[int, typer.Option(help="Keep-alive connections at most.")] = 64,
    max_in_flight: Annotated[
        int,
        typer.Option(help="Open loop: arrivals beyond this many unanswered are dropped."),
    ] = 1024,
    customers: Annotated[int, typer.Option(help="Customers the orders are spread over.")] = 4,
    lines: Annotated[str, typer.Option(help="Lines per order, a range.")] = "1-5",
    decline_share: Annotated[float, typer.Option(help="Share paid with tok_decline.")] = 0.05,
    transient_share: Annotated[
        float,
        typer.Option(
            help="Share paid with tok_fail_transient (two failures then success: the retry "
            "path, whose backoff is deliberate latency)."
        ),
    ] = 0.0,
    idempotency_keys: Annotated[
        bool, typer.Option(help="Send every order with its own Idempotency-Key.")
    ] = True,
    status_reads: Annotated[
        float,
        typer.Option(help="Order-list reads per second, like storefronts showing status."),
    ] = 0.0,
    ceiling: Annotated[
        bool,
        typer.Option(
            help="First measure a bare FastAPI endpoint validating the same body (flat out, "
            "same connections) and report submission as a ratio to it."
        ),
    ] = False,
    ceiling_duration: Annotated[float, typer.Option(help="Seconds of the ceiling run.")] = 5.0,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    chart: Annotated[Path | None, typer.Option(help="Write an SVG chart of the run here.")] = None,
    settle_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for accepted orders to finish.")
    ] = 120.0,
    direct: Annotated[
        bool,
        typer.Option(
            help="Talk to the API's own port, signing identity assertions with the local "
            "gateway key from the data dir (measures the API without the gateway)."
        ),
    ] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="With --direct: the data dir holding the keys.")
    ] = None,
    email_prefix: Annotated[
        str, typer.Option(help="Customers are <prefix>-<n>@orderflow.local (made if new).")
    ] = "bench",
    password: Annotated[str, typer.Option(help="The customers' password.")] = "orderflow-bench",
    seed: Annotated[int, typer.Option(help="Seed of the order mix.")] = 1,
) -> None:
    """Load the order API and report throughput, errors and latency from each order's timeline."""
    import asyncio

    import aiohttp
    from rich.console import Console

    from orderflow.tools.bench.config import BenchConfig, parse_range
    from orderflow.tools.bench.customers import CustomerSetupError
    from orderflow.tools.bench.mix import CatalogError
    from orderflow.tools.bench.runner import run_bench, write_outputs

    key_dir = None
    if direct:
        from orderflow.config import Settings

        settings = Settings(data_dir=data_dir) if data_dir else Settings()
        key_dir = settings.identity_keys_dir
    try:
        config = BenchConfig(
            url=url,
            mode="max" if flat_out else "open",
            rate=rate,
            duration=None if orders is not None else duration,
            orders=orders,
            connections=connections,
            max_in_flight=max_in_flight,
            customers=customers,
            lines=parse_range(lines),
            decline_share=decline_share,
            transient_share=transient_share,
            idempotency_keys=idempotency_keys,
            status_reads=status_reads,
            direct=direct,
            key_dir=key_dir,
            email_prefix=email_prefix,
            password=password,
            settle_timeout=settle_timeout,
            ceiling=ceiling,
            ceiling_duration=ceiling_duration,
            seed=seed,
            report=report,
            chart=chart,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console = Console()
    try:
        result = asyncio.run(run_bench(config, console))
    except (CustomerSetupError, CatalogError, aiohttp.ClientError) as exc:
        # Setting up failed (no system at the URL, a rate limit, an empty catalog): say so plainly.
        console.print(f"[red]bench could not start:[/] {exc}")
        raise typer.Exit(2) from exc
    write_outputs(result, config, console)
    if result["processing"]["unfinished"]:
        raise typer.Exit(1)
