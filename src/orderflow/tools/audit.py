"""`orderflow audit`: one line per broken invariant, naming the order; exit 1 if any."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from orderflow.config import Settings


def audit(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where the embedded database and the provider's ledger live."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL (sqlite+aiosqlite://, postgresql+asyncpg://)."),
    ] = None,
) -> None:
    """Check every invariant of the orders, stock and payments (money against the payment
    provider's own ledger, orders against their per-status deadlines); exit 1 if any is broken."""
    from orderflow.bootstrap import audit as run_audit

    overrides: dict[str, Any] = {"data_dir": data_dir, "database_url": database_url}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    violations, counts = asyncio.run(run_audit(settings))
    typer.echo("orders by status: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    for v in violations:
        typer.echo(f"VIOLATION {v.invariant} {v.subject}: {v.description}")
    if violations:
        typer.echo(f"{len(violations)} violation(s)")
        raise typer.Exit(1)
    typer.echo("all invariants hold")
