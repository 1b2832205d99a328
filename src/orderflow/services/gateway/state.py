"""What the gateway is built from (GatewayParts, handed in by bootstrap) and what one gateway
process holds while it runs (GatewayState)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from orderflow.ports.accounts import Accounts, ApiKeys, RefreshTokens
from orderflow.ports.identity import AccessTokens, IdentitySigner
from orderflow.ports.rate_limits import RateLimits
from orderflow.services.gateway.account_state import AccountStates
from orderflow.services.gateway.authn import Authenticator
from orderflow.services.gateway.forwarding import AssertionMinter
from orderflow.services.gateway.locations import LocationRewriter
from orderflow.services.gateway.passwords import Passwords
from orderflow.services.gateway.rate_limit import Throttles
from orderflow.services.gateway.routes import RouteTable
from orderflow.services.gateway.settings import GatewaySettings
from orderflow.services.gateway.tickets import Tickets
from orderflow.web.health import Check


@dataclass(frozen=True, slots=True)
class GatewayParts:
    """The adapters: stores, key holders, readiness checks, and what to do at start and stop
    (migrate the database, close its pool)."""

    accounts: Accounts
    refresh_tokens: RefreshTokens
    api_keys: ApiKeys
    tokens: AccessTokens
    signer: IdentitySigner
    rate_limits: RateLimits  # closed when the gateway stops
    readiness: Mapping[str, Check]
    on_start: Callable[[], Awaitable[None]] | None = None
    on_stop: Callable[[], Awaitable[None]] | None = None


@dataclass(slots=True)
class GatewayState:
    settings: GatewaySettings
    accounts: Accounts
    passwords: Passwords
    tokens: AccessTokens
    refresh_tokens: RefreshTokens
    api_keys: ApiKeys
    account_states: AccountStates
    authenticator: Authenticator
    minter: AssertionMinter
    routes: RouteTable
    locations: LocationRewriter
    throttles: Throttles
    tickets: Tickets
    client: aiohttp.ClientSession = field(init=False)  # opened in the app's lifespan
