"""Creating an admin account (`orderflow admin create`, and the demo admin of `orderflow run`);
bootstrap hands in the store and the hasher."""

from __future__ import annotations

from orderflow.domain.identity import ADMIN
from orderflow.ports.accounts import Accounts
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
