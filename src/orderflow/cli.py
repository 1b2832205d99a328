"""The `orderflow` command line."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from orderflow.config import Settings
from orderflow.logs import configure_logging

app = typer.Typer(no_args_is_help=True, help="OrderFlow: real-time order processing.")
serve_app = typer.Typer(no_args_is_help=True, help="Serve one HTTP service.")
app.add_typer(serve_app, name="serve")

DataDir = Annotated[
    Path | None, typer.Option(help="Where the embedded database, broker and keys live.")
]
DatabaseUrl = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL (sqlite+aiosqlite://, postgresql+asyncpg://).")
]
BrokerUrl = Annotated[
    str | None,
    typer.Option(help="embedded:///path, nats://host:4222 or amqp://user:pw@host/vhost."),
]
Port = Annotated[int | None, typer.Option(help="Port to listen on.")]
HealthPort = Annotated[
    int | None,
    typer.Option(
        "--health-port",
        "--port",
        help="Serve /healthz and /readyz (database and broker reachable) on this port.",
    ),
]


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _env_for_children(settings: Settings) -> dict[str, str]:
    """The resolved settings, handed to child processes through the environment."""
    fields = (
        "data_dir",
        "database_url",
        "broker_url",
        "broker_prefix",
        "identity_keys_dir",
        "identity_jwks_file",
        "payment_simulator_path",
        "log_level",
        "environment",
    )
    return {f"ORDERFLOW_{f.upper()}": str(getattr(settings, f)) for f in fields}


@app.command()
def run(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
    port: Port = None,
) -> None:
    """Migrate, seed the demo catalog, and run every service until Ctrl-C."""
    from orderflow.bootstrap import prepare
    from orderflow.supervisor import ChildSpec, Supervisor, child_env

    settings = _settings(
        data_dir=data_dir, database_url=database_url, broker_url=broker_url, port=port
    )
    configure_logging("supervisor", settings.log_level, settings.log_json)
    asyncio.run(prepare(settings))
    api_port = settings.port
    children = [
        ChildSpec("api", ("serve", "api", "--port", str(api_port))),
        ChildSpec("workers", ("worker", "all")),
    ]

    async def main() -> None:
        supervisor = Supervisor(children, child_env(_env_for_children(settings)))
        await supervisor.start()
        await _wait_healthy(f"http://{settings.host}:{api_port}/healthz", supervisor.stopping)
        typer.echo(
            f"\nOrderFlow is running.\n  API:      http://{settings.host}:{api_port}/api/v1\n"
            f"  OpenAPI:  http://{settings.host}:{api_port}/docs\n"
            f"  Data:     {settings.data_dir.resolve()}\nPress Ctrl-C to stop.\n",
            err=True,
        )
        await supervisor.run_until_stopped()

    asyncio.run(main())


async def _wait_healthy(url: str, stopping: asyncio.Event, timeout: float = 60.0) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as client:
        while not stopping.is_set() and loop.time() < deadline:
            try:
                async with client.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)


@serve_app.command("api")
def serve_api(
    port: Port = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The order API (behind the gateway)."""
    from orderflow.bootstrap import build_api

    settings = _settings(data_dir=data_dir, database_url=database_url)
    configure_logging("api", settings.log_level, settings.log_json)
    config = uvicorn.Config(
        build_api(settings),
        host=settings.host,
        port=port or settings.api_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=20,
    )
    uvicorn.Server(config).run()


@app.command()
def worker(
    names: Annotated[list[str], typer.Argument(help="orders, inventory, payment, relay, or all")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
    health_port: HealthPort = None,
) -> None:
    """Run consumers (and/or the outbox relay) until SIGTERM."""
    from orderflow.bootstrap import WORKERS, WorkerSet

    settings = _settings(
        data_dir=data_dir, database_url=database_url, broker_url=broker_url, health_port=health_port
    )
    wanted = set(WORKERS) | {"relay"} if "all" in names else set(names)
    unknown = wanted - set(WORKERS) - {"relay"}
    if unknown:
        raise typer.BadParameter(f"unknown worker(s): {', '.join(sorted(unknown))}")
    configure_logging("+".join(sorted(wanted)), settings.log_level, settings.log_json)
    workers = WorkerSet(settings, [n for n in WORKERS if n in wanted], with_relay="relay" in wanted)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, workers.stop.set)
        await workers.run()

    asyncio.run(main())


@app.command()
def relay(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
    health_port: HealthPort = None,
) -> None:
    """Run only the outbox relay (several may run at once on PostgreSQL)."""
    worker(["relay"], data_dir, database_url, broker_url, health_port)


@app.command()
def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Apply database migrations."""
    from orderflow.adapters.db.migrate import migrate as apply
    from orderflow.bootstrap import build_database

    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def main() -> None:
        db = build_database(settings)
        try:
            await apply(db)
        finally:
            await db.dispose()

    asyncio.run(main())
    typer.echo("database is at the latest migration")


@app.command()
def seed(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Load the demo catalog (only into an empty catalog)."""
    from orderflow.bootstrap import build_database
    from orderflow.seed import seed_demo_catalog

    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def main() -> bool:
        db = build_database(settings)
        try:
            return await seed_demo_catalog(db)
        finally:
            await db.dispose()

    typer.echo(
        "seeded the demo catalog" if asyncio.run(main()) else "catalog not empty; left as is"
    )


@app.command()
def audit(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Check every invariant of the order database; exit 1 if any is broken."""
    from orderflow.adapters.db.audit import audit as run_audit
    from orderflow.adapters.db.audit import status_counts
    from orderflow.bootstrap import build_database

    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def main() -> tuple[dict[str, list[str]], dict[str, int]]:
        db = build_database(settings)
        try:
            async with db.read() as conn:
                return await run_audit(conn), await status_counts(conn)
        finally:
            await db.dispose()

    problems, counts = asyncio.run(main())
    typer.echo("orders by status: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    for name, ids in problems.items():
        typer.echo(f"VIOLATION {name}: {len(ids)} (e.g. {', '.join(ids[:5])})")
    if problems:
        raise typer.Exit(1)
    typer.echo("all invariants hold")


@app.command()
def bench(
    url: Annotated[str, typer.Option(help="Where the API answers.")] = "http://127.0.0.1:8080",
    orders: Annotated[int, typer.Option(help="How many orders to submit.")] = 5000,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 64,
    rate: Annotated[
        float | None, typer.Option(help="Orders per second (default: flat out).")
    ] = None,
    customers: Annotated[int, typer.Option(help="Distinct customers to spread orders over.")] = 100,
    data_dir: DataDir = None,
) -> None:
    """Submit orders, wait for them to settle, print throughput and submit-to-final latency."""
    import uuid

    from rich.progress import Progress

    from orderflow.adapters.identity.assertions import HEADER, AssertionSigner, ensure_signing_key
    from orderflow.bench import run_bench
    from orderflow.domain.identity import Identity

    settings = _settings(data_dir=data_dir)
    signer = AssertionSigner(ensure_signing_key(settings.identity_keys_dir), ttl=3600)
    tokens = [
        signer.sign(Identity(str(uuid.uuid4()), frozenset({"customer"}))) for _ in range(customers)
    ]

    def headers(i: int) -> dict[str, str]:
        return {HEADER: tokens[i % len(tokens)]}

    with Progress(transient=True) as progress:
        result = asyncio.run(run_bench(url, headers, orders, concurrency, rate, progress))
    typer.echo(result.report())


def main() -> None:
    app()
