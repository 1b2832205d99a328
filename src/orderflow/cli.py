"""The `orderflow` command line."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from orderflow import admin_commands
from orderflow.config import Settings
from orderflow.processes.logs import configure_logging
from orderflow.tools.audit import audit as audit_command
from orderflow.tools.bench.command import bench as bench_command
from orderflow.tools.dlq import dlq_app

# A crash's traceback shows no local variables: they hold settings and URLs with passwords.
app = typer.Typer(
    no_args_is_help=True,
    help="OrderFlow: real-time order processing.",
    pretty_exceptions_show_locals=False,
)
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


def _check_gateway_settings() -> None:
    """Refuse unusable gateway settings before anything is done (migrating, starting)."""
    from orderflow.services.gateway.settings import GatewaySettings

    GatewaySettings()


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
    api_port: Annotated[int | None, typer.Option(help="Internal port of the order API.")] = None,
) -> None:
    """Migrate, seed the demo catalog, and run every service until Ctrl-C."""
    from orderflow.processes.supervisor import ChildSpec, Supervisor, child_env, in_forked_child

    settings = _settings(
        data_dir=data_dir,
        database_url=database_url,
        broker_url=broker_url,
        port=port,
        api_port=api_port,
    )
    _check_gateway_settings()
    configure_logging("supervisor", settings.log_level, settings.log_json)
    # In a forked child: what preparing imports (SQLAlchemy, alembic, the web apps) stays out of
    # the supervisor, which lives as long as the services and needs none of it.
    admin_password = in_forked_child(lambda: asyncio.run(_prepare_all(settings))) or None
    children = [
        ChildSpec("gateway", ("serve", "gateway", "--port", str(settings.port))),
        ChildSpec("api", ("serve", "api", "--port", str(settings.api_port))),
        ChildSpec("stream", ("serve", "stream", "--port", str(settings.stream_port))),
        ChildSpec("workers", ("worker", "all", "--health-port", str(settings.workers_port))),
    ]
    env = _env_for_children(settings)
    env["ORDERFLOW_GATEWAY_API_UPSTREAM"] = f"http://127.0.0.1:{settings.api_port}"
    env["ORDERFLOW_GATEWAY_STREAM_UPSTREAM"] = f"http://127.0.0.1:{settings.stream_port}"
    public = f"http://{settings.host}:{settings.port}"

    async def main() -> None:
        supervisor = Supervisor(children, child_env(env))
        await supervisor.start()
        gateway_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        await _wait_healthy(gateway_host, settings.port, supervisor.stopping)
        for port in (settings.api_port, settings.stream_port):
            await _wait_healthy("127.0.0.1", port, supervisor.stopping)
        banner = (
            f"\nOrderFlow is running.\n"
            f"  Gateway (the public entry): {public}\n"
            f"  Storefront:                 {public}/\n"
            f"  API docs:                   {public}/docs\n"
            f"  Live status:                {public}/ws (WebSocket), {public}/events (SSE)\n"
            f"  Order API:                  {public}/api/v1/orders, {public}/api/v1/products\n"
            f"  Sign up / log in:           POST {public}/auth/register, POST {public}/auth/token\n"
            f"  Data:                       {settings.data_dir.resolve()}\n"
        )
        banner += _scrape_targets(settings, public)
        if admin_password:
            banner += f"  Demo admin (shown once):    {DEMO_ADMIN} / {admin_password}\n"
        typer.echo(banner + "Press Ctrl-C to stop.\n", err=True)
        await supervisor.run_until_stopped()

    asyncio.run(main())


DEMO_ADMIN = "admin@orderflow.local"


async def _prepare_all(settings: Settings) -> str:
    from orderflow.bootstrap import prepare

    await prepare(settings)
    return await _prepare_gateway(settings) or ""


def _scrape_targets(settings: Settings, public: str) -> str:
    """What Prometheus scrapes (docs/metrics.md): each process on its own port."""
    internal = {"api": settings.api_port, "stream": settings.stream_port}
    internal["workers"] = settings.workers_port
    targets = ", ".join(f"{name} 127.0.0.1:{port}" for name, port in internal.items())
    return (
        f"  Metrics (Prometheus):       /metrics of {targets};\n"
        f"                              gateway {public}/metrics (admins only)\n"
    )


async def _prepare_gateway(settings: Settings) -> str | None:
    """Migrate the gateway's database; on first start create the demo admin and return its
    password (it is stored only as a hash, so this is the one time it can be shown)."""
    import secrets

    from orderflow.bootstrap import create_gateway_admin, migrate_gateway
    from orderflow.ports.accounts import EmailTakenError

    await migrate_gateway(settings)
    password = secrets.token_urlsafe(12)
    try:
        await create_gateway_admin(settings, DEMO_ADMIN, password)
    except EmailTakenError:
        return None
    return password


async def _wait_healthy(
    host: str, port: int, stopping: asyncio.Event, timeout: float = 60.0
) -> None:
    """Until GET /healthz on `host`:`port` answers 200 (a bare HTTP/1.0 request: no HTTP
    client library in the supervisor)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not stopping.is_set() and loop.time() < deadline:
        try:
            async with asyncio.timeout(1):
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(f"GET /healthz HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                    status = await reader.readline()
                finally:
                    writer.close()
            if status.split()[1:2] == [b"200"]:
                return
        except (OSError, TimeoutError):
            pass
        await asyncio.sleep(0.05)


def _serve(app: Any, settings: Settings, port: int, edge: bool = False, **options: Any) -> None:
    """`edge`: the public port; the servers behind it allow what the gateway adds to a request."""
    import uvicorn

    from orderflow.web.header_limits import HeaderLimits, protocol_class

    limits = HeaderLimits(settings.max_header_bytes, settings.max_header_count)
    limits = limits if edge else limits.behind_gateway()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        loop="uvloop",
        http=protocol_class("httptools", limits),  # 431 past the limits
        access_log=False,  # each app logs its own requests, with the request id
        log_config=None,
        # Neither app takes the client address from X-Forwarded-For on uvicorn's say: the gateway
        # decides itself (trust_forwarded_for), or any local client could dodge per-IP limits.
        proxy_headers=False,
        **{"timeout_graceful_shutdown": 20, **options},
    )
    uvicorn.Server(config).run()


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
    _serve(build_api(settings), settings, port or settings.api_port)


@serve_app.command("stream")
def serve_stream(
    port: Port = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
) -> None:
    """The stream service (live order status over /ws and /events) and the storefront page."""
    from orderflow.bootstrap import build_stream

    settings = _settings(data_dir=data_dir, database_url=database_url, broker_url=broker_url)
    configure_logging("stream", settings.log_level, settings.log_json)
    # Client frames are tiny (a subscribe); anything big is refused by the server itself.
    # Graceful shutdown waits for open streams only briefly: clients resume elsewhere.
    _serve(
        build_stream(settings),
        settings,
        port or settings.stream_port,
        ws_max_size=64 * 1024,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=3,
    )


@serve_app.command("gateway")
def serve_gateway(port: Port = None, data_dir: DataDir = None) -> None:
    """The authentication gateway: the public entry point."""
    from orderflow.bootstrap import build_gateway

    settings = _settings(data_dir=data_dir)
    configure_logging("gateway", settings.log_level, settings.log_json)
    _serve(build_gateway(settings), settings, port or settings.port, edge=True)


admin_app = typer.Typer(no_args_is_help=True, help="Manage gateway accounts.")
app.add_typer(admin_app, name="admin")


@admin_app.command("create")
def admin_create(
    email: Annotated[str, typer.Option(help="The admin's email (their login).")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    data_dir: DataDir = None,
) -> None:
    """Create an admin account in the gateway's database."""
    from orderflow.bootstrap import create_gateway_admin
    from orderflow.ports.accounts import EmailTakenError
    from orderflow.services.gateway.admin import AdminInputError

    settings = _settings(data_dir=data_dir)
    try:
        account = asyncio.run(create_gateway_admin(settings, email, password))
    except (AdminInputError, EmailTakenError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"created admin {email} ({account})")


admin_commands.register(admin_app)


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

    # uvloop, as the web services run under uvicorn: every wake-up and thread hop is cheaper.
    import uvloop

    uvloop.run(main())


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
    from orderflow.bootstrap import migrate_gateway, open_database

    settings = _settings(data_dir=data_dir, database_url=database_url)
    _check_gateway_settings()

    async def main() -> None:
        async with open_database(settings) as db:
            await apply(db)
        await migrate_gateway(settings)

    asyncio.run(main())
    typer.echo("the order and gateway databases are at their latest migration")


@app.command()
def seed(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Load the demo catalog (only into an empty catalog)."""
    from orderflow.bootstrap import open_database
    from orderflow.demo.catalog import seed_demo_catalog

    settings = _settings(data_dir=data_dir, database_url=database_url)

    async def main() -> bool:
        async with open_database(settings) as db:
            return await seed_demo_catalog(db)

    typer.echo(
        "seeded the demo catalog" if asyncio.run(main()) else "catalog not empty; left as is"
    )


app.command("audit")(audit_command)
app.command("bench")(bench_command)
app.add_typer(dlq_app, name="dlq")


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        # Settings that cannot work: one line each, naming the setting. Never str(exc), which
        # repeats the value given (a URL with its password).
        for error in exc.errors(include_url=False, include_input=False):
            message = str(error["msg"]).removeprefix("Value error, ")
            where = ".".join(str(part) for part in error["loc"])
            typer.echo(
                f"orderflow: {message}"
                if "ORDERFLOW_" in message
                else f"orderflow: setting {where}: {message}",
                err=True,
            )
        raise SystemExit(2) from None
