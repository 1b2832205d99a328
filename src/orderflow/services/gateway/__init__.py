"""The authentication gateway: the only public port, proxying to the services behind it."""

from orderflow.adapters.gateway_db.accounts import EmailTakenError
from orderflow.services.gateway.admin import (
    AdminInputError,
    create_admin,
    migrate,
    rotate_signing_key,
)
from orderflow.services.gateway.app import create_gateway_app
from orderflow.services.gateway.settings import GatewaySettings

__all__ = [
    "AdminInputError",
    "EmailTakenError",
    "GatewaySettings",
    "create_admin",
    "create_gateway_app",
    "migrate",
    "rotate_signing_key",
]
