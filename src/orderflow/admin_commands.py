"""`orderflow admin disable|enable|delete --email E`: account controls from the command line
(the same as the admin endpoints under /auth/accounts, for when no admin can sign in)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orderflow.config import Settings

if TYPE_CHECKING:
    from orderflow.services.gateway.admin import AccountAction

Email = Annotated[str, typer.Option(help="The account's email (its login).")]
DataDir = Annotated[
    Path | None, typer.Option(help="Where the embedded database, broker and keys live.")
]


def _manage(email: str, action: AccountAction, data_dir: Path | None) -> None:
    from orderflow.bootstrap import manage_gateway_account
    from orderflow.ports.accounts import LastAdminError
    from orderflow.services.gateway.admin import AdminInputError

    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    try:
        account_id = asyncio.run(manage_gateway_account(settings, email, action))
    except (AdminInputError, LastAdminError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{action}d {email} ({account_id})")


def disable(email: Email, data_dir: DataDir = None) -> None:
    """Disable an account: its tokens and the API keys it created stop within a second."""
    _manage(email, "disable", data_dir)


def enable(email: Email, data_dir: DataDir = None) -> None:
    """Enable a disabled account again (it signs in anew; its API keys work again)."""
    _manage(email, "enable", data_dir)


def delete(email: Email, data_dir: DataDir = None) -> None:
    """Delete an account: its tokens stop and the API keys it created are revoked."""
    _manage(email, "delete", data_dir)


def register(admin_app: typer.Typer) -> None:
    for command in (disable, enable, delete):
        admin_app.command(command.__name__)(command)
