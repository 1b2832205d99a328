"""The authentication gateway: the only public port, proxying to the services behind it.

bootstrap.build_gateway builds its adapters and hands them in (`GatewayParts`); nothing here
imports an adapter.
"""

from orderflow.services.gateway.app import create_gateway_app
from orderflow.services.gateway.settings import GatewaySettings
from orderflow.services.gateway.state import GatewayParts

__all__ = ["GatewayParts", "GatewaySettings", "create_gateway_app"]
