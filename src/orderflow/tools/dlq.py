"""`orderflow dlq list|show|replay|discard`: the dead letters, from the command line.

The same use cases as the admin API (`services/orders/recovery.py`), run against the database and
broker the settings name. A dead letter is named `<group>/<position>`, as `list` prints it.
Exit status 1 when the dead letter is gone (replayed or discarded already) or its order cannot be
resumed.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer

from orderflow.config import Settings

if TYPE_CHECKING:  # loaded when a command runs, not with every `orderflow` start
    from orderflow.services.orders.recovery import DeadLetters

T = TypeVar("T")

dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: list, show, replay, discard.")

DataDir = Annotated[Path | None, typer.Option(help="Where the embedded database and broker live.")]
DatabaseUrl = Annotated[str | None, typer.Option(help="SQLAlchemy URL of the order database.")]
BrokerUrl = Annotated[str | None, typer.Option(help="embedded:///path, nats://... or amqp://...")]
DeadLetterId = Annotated[str, typer.Argument(help="<group>/<position>, as `list` prints it.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")]


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _parse_id(text: str) -> tuple[str, int]:
    group, _, position = text.rpartition("/")
    if not group or not position.isdigit() or int(position) < 1:
        raise typer.BadParameter(f"expected <group>/<position>, got {text!r}")
    return group, int(position)


def _run(settings: Settings, job: Callable[[DeadLetters], Awaitable[T]]) -> T:
    """`job(tools)` with the dead-letter tools over the settings' database and broker; a dead
    letter that is gone or an order that cannot resume ends the command with status 1."""
    from orderflow.domain.errors import OrderNotResumableError
    from orderflow.services.orders.recovery import DeadLetterNotFoundError

    async def main() -> T:
        async with _tools(settings) as tools:
            return await job(tools)

    try:
        return asyncio.run(main())
    except DeadLetterNotFoundError as exc:
        typer.echo(f"no dead letter {exc}", err=True)
        raise typer.Exit(1) from exc
    except OrderNotResumableError as exc:
        typer.echo(f"order cannot be resumed: {exc}", err=True)
        raise typer.Exit(1) from exc


@asynccontextmanager
async def _tools(settings: Settings) -> AsyncIterator[DeadLetters]:
    from orderflow.bootstrap import WORKERS, build_broker, build_storage, open_database
    from orderflow.services.orders.recovery import DeadLetters

    async with open_database(settings) as db:
        broker = build_broker(settings)
        await broker.connect()
        try:
            yield DeadLetters(broker, build_storage(db), WORKERS)
        finally:
            await broker.close()


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "cli:unknown"


@dlq_app.command("list")
def list_dead_letters(
    group: Annotated[str | None, typer.Option(help="Only this consumer group's.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
) -> None:
    """List dead letters, oldest first per group."""
    settings = _settings(data_dir=data_dir, database_url=database_url, broker_url=broker_url)

    async def job(tools: DeadLetters) -> list[dict[str, Any]]:
        views, _ = await tools.page(group, None, limit)
        return [v.summary() for v in views]

    rows = _run(settings, job)
    if as_json:
        for row in rows:
            typer.echo(orjson.dumps(row).decode())
        return
    if not rows:
        typer.echo("no dead letters")
        return
    typer.echo(f"{'ID':<20} {'ORDER':<36} {'MESSAGE':<18} {'TRIES':>5}  REASON")
    for r in rows:
        kind = r["message_type"] or "(unreadable)"
        order = r["order_id"] or "-"
        typer.echo(f"{r['id']:<20} {order:<36} {kind:<18} {r['attempts']:>5}  {r['reason']}")


@dlq_app.command("show")
def show(
    dead_letter: DeadLetterId,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
) -> None:
    """Show one dead letter: its payload and every failed attempt with its error (JSON)."""
    group, position = _parse_id(dead_letter)
    settings = _settings(data_dir=data_dir, database_url=database_url, broker_url=broker_url)

    async def job(tools: DeadLetters) -> dict[str, Any]:
        return (await tools.show(group, position)).as_json()

    typer.echo(orjson.dumps(_run(settings, job), option=orjson.OPT_INDENT_2).decode())


@dlq_app.command("replay")
def replay(
    dead_letter: DeadLetterId,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
) -> None:
    """Deliver a dead letter to its group again (resuming or restarting its failed order)."""
    group, position = _parse_id(dead_letter)
    settings = _settings(data_dir=data_dir, database_url=database_url, broker_url=broker_url)

    async def job(tools: DeadLetters) -> str:
        return await tools.replay(group, position, actor=_actor())

    outcome = _run(settings, job)
    notes = {"resumed": "; its order resumed", "restarted": " by restarting its order"}
    typer.echo(f"replayed {dead_letter}{notes.get(outcome, '')}")


@dlq_app.command("discard")
def discard(
    dead_letter: DeadLetterId,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
) -> None:
    """Remove a dead letter for good."""
    group, position = _parse_id(dead_letter)
    settings = _settings(data_dir=data_dir, database_url=database_url, broker_url=broker_url)

    async def job(tools: DeadLetters) -> None:
        await tools.discard(group, position, actor=_actor())

    _run(settings, job)
    typer.echo(f"discarded {dead_letter}")
