"""Operations the CLI calls: migrate, create an admin, rotate the access-token key."""

from __future__ import annotations

from orderflow.adapters.gateway_db import database
from orderflow.adapters.gateway_db.accounts import AccountRepository
from orderflow.config import Settings
from orderflow.domain.identity import ADMIN
from orderflow.services.gateway.emails import normalise_email
from orderflow.services.gateway.passwords import Passwords
from orderflow.services.gateway.settings import GatewaySettings
from orderflow.services.gateway.tokens import rotate_access_key


class AdminInputError(ValueError):
    """Bad email or password given to `create_admin`."""


async def migrate(settings: Settings, gateway_settings: GatewaySettings | None = None) -> None:
    gw = (gateway_settings or GatewaySettings()).resolved(settings)
    engine = database.create_engine(gw.database_url)
    try:
        await database.run_migrations(engine)
    finally:
        await engine.dispose()


async def create_admin(
    settings: Settings,
    email: str,
    password: str,
    gateway_settings: GatewaySettings | None = None,
    name: str = "Administrator",
) -> str:
    """Create an admin account and return its id; raises EmailTakenError if the email exists."""
    gw = (gateway_settings or GatewaySettings()).resolved(settings)
    normalised = normalise_email(email)
    if normalised is None:
        raise AdminInputError(f"{email!r} is not an email address")
    if len(password) < gw.password_min_length:
        raise AdminInputError(f"password needs at least {gw.password_min_length} characters")
    engine = database.create_engine(gw.database_url)
    try:
        await database.run_migrations(engine)
        passwords = Passwords(gw.argon2_time_cost, gw.argon2_memory_cost, gw.argon2_parallelism)
        account = await AccountRepository(engine).create(
            normalised, name, await passwords.hash(password), frozenset({ADMIN})
        )
    finally:
        await engine.dispose()
    return account.id


def rotate_signing_key(settings: Settings, gateway_settings: GatewaySettings | None = None) -> str:
    """Add a new access-token key (its kid is returned); it signs from the next start."""
    gw = (gateway_settings or GatewaySettings()).resolved(settings)
    return rotate_access_key(gw.access_keys_dir)
