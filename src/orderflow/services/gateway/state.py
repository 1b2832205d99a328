"""Everything one gateway process holds, built once at start (the composition root's product)."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from orderflow.adapters.gateway_db.accounts import AccountRepository
from orderflow.adapters.gateway_db.api_keys import ApiKeys
from orderflow.adapters.gateway_db.refresh_tokens import RefreshTokens
from orderflow.services.gateway.authn import Authenticator
from orderflow.services.gateway.forwarding import AssertionMinter
from orderflow.services.gateway.passwords import Passwords
from orderflow.services.gateway.rate_limit import RateLimiter
from orderflow.services.gateway.routes import RouteTable
from orderflow.services.gateway.settings import GatewaySettings
from orderflow.services.gateway.tickets import Tickets
from orderflow.services.gateway.tokens import AccessTokens


@dataclass(slots=True)
class Limiters:
    login_ip: RateLimiter
    login_account: RateLimiter
    register_ip: RateLimiter
    register_account: RateLimiter

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Limiters:
        return cls(
            login_ip=RateLimiter(settings.login_ip_limit, settings.login_ip_window),
            login_account=RateLimiter(settings.login_account_limit, settings.login_account_window),
            register_ip=RateLimiter(settings.register_ip_limit, settings.register_ip_window),
            register_account=RateLimiter(settings.login_account_limit, settings.register_ip_window),
        )


@dataclass(slots=True)
class GatewayState:
    settings: GatewaySettings
    engine: AsyncEngine
    accounts: AccountRepository
    passwords: Passwords
    tokens: AccessTokens
    refresh_tokens: RefreshTokens
    api_keys: ApiKeys
    authenticator: Authenticator
    minter: AssertionMinter
    routes: RouteTable
    limiters: Limiters
    client: aiohttp.ClientSession
    tickets: Tickets
