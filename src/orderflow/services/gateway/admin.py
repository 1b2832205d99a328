"""Creating an admin account (`orderflow admin create`, and the demo admin of `orderflow run`)
and disabling, enabling or deleting an account (`orderflow admin disable|enable|delete`);
bootstrap hands in the store and the hasher."""

from __future__ import annotations

from typing import Literal

from orderflow.domain.identity import ADMIN
from orderflow.ports.accounts import Account, Accounts
from orderflow.services.gateway.emails import normalise_email
from orderflow.services.gateway.passwords import Passwords


class AdminInputError(ValueError):
    """Bad email or password given to `create_admin`."""


async def create_admin(
    accounts: Accounts,
    passwords: Passwords,
    email: str,
    password: str,
    *,
    min_length: int,
    name: str = "Administrator",
) -> str:
    """Create an admin account and return its id; raises EmailTakenError if the email exists."""
    normalised = normalise_email(email)
    if normalised is None:
        raise AdminInputError(f"{email!r} is not an email address")
    if len(password) < min_length:
        raise AdminInputError(f"password needs at least {min_length} characters")
    account = await accounts.create(
        normalised, name, await passwords.hash(password), frozenset({ADMIN})
    )
    return account.id


AccountAction = Literal["disable", "enable", "delete"]


async def manage_account(accounts: Accounts, email: str, action: AccountAction) -> Account:
    """Disable, enable or delete the account of `email` (`orderflow admin disable|enable|delete`)
    and return it as it was found; AdminInputError when there is none, LastAdminError when the
    change would leave no enabled admin."""
    account = await accounts.by_email(normalise_email(email) or email.strip().lower())
    if account is None:
        raise AdminInputError(f"no account has the email {email!r}")
    if action == "delete":
        found = await accounts.delete(account.id)
    else:
        found = await accounts.set_disabled(account.id, action == "disable") is not None
    if not found:  # deleted meanwhile
        raise AdminInputError(f"no account has the email {email!r}")
    return account
