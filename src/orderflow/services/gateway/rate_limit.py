"""The gateway's limits on logins and registrations, counted through the `RateLimits` port (in
this process's memory, or in Redis shared by every gateway process: adapters/rate_limits.py).

Logins are limited three ways, each attempt counted before the (slow) password check so that
parallel guesses cannot all slip in under a limit:

- per client address, whatever the account (`login_ip_*`): one address spraying many accounts;
- per account and client address (`login_client_limits`, tiers such as 5 a minute, 10 in 15
  minutes, 20 an hour): the delays grow with that client's failures on that account, and only
  that client waits. The owner signing in from elsewhere is not locked out by someone guessing,
  and a successful login clears the client's count;
- per account from all clients together (`login_account_*`, 20 a minute): a guesser with many
  addresses is slowed to that rate, while the owner waits at most the window's rest (its
  Retry-After), never the minutes of a per-account lock. A moving window cannot take an attempt
  back, so successful logins count here too; the default is far above what a person does.

Unknown accounts are limited exactly like known ones, so a limit reveals nothing about which
accounts exist. Registrations are limited per client address and per email.
"""

from __future__ import annotations

import math

from orderflow.ports.rate_limits import RateLimit, RateLimits
from orderflow.services.gateway.settings import GatewaySettings
from orderflow.web.problems import ProblemError


class Throttles:
    def __init__(self, limits: RateLimits, settings: GatewaySettings) -> None:
        self._limits = limits
        self._login_ip = _limit("login-ip", settings.login_ip_limit, settings.login_ip_window)
        self._login_client = [
            _limit(f"login-client-{window}", amount, window)
            for amount, window in settings.login_client_limits
        ]
        self._login_account = _limit(
            "login-account", settings.login_account_limit, settings.login_account_window
        )
        window = settings.register_ip_window
        self._register_ip = _limit("register-ip", settings.register_ip_limit, window)
        self._register_account = _limit("register-account", settings.register_account_limit, window)

    async def login(self, email: str, client: str) -> None:
        """Count a login attempt; a 429 ProblemError when a limit refuses it."""
        _refuse(await self._limits.hit(self._login_ip, client))
        pair = _pair(email, client)
        # Ask every tier before counting in any, so a refused attempt is charged nowhere.
        _refuse(_longest([await self._limits.allows(t, pair) for t in self._login_client]))
        _refuse(await self._limits.hit(self._login_account, email))
        for tier in self._login_client:
            _refuse(await self._limits.hit(tier, pair))  # refuses only a concurrent attempt

    async def login_succeeded(self, email: str, client: str) -> None:
        pair = _pair(email, client)
        for tier in self._login_client:
            await self._limits.clear(tier, pair)

    async def register_from(self, client: str) -> None:
        _refuse(await self._limits.hit(self._register_ip, client))

    async def register_email(self, email: str) -> None:
        _refuse(await self._limits.hit(self._register_account, email))


def _limit(name: str, amount: int, window: float) -> RateLimit:
    return RateLimit(name, amount, max(1, math.ceil(window)))


def _pair(email: str, client: str) -> str:
    return f"{email}\n{client}"


def _longest(waits: list[float | None]) -> float | None:
    known = [w for w in waits if w is not None]
    return max(known) if known else None


def _refuse(wait: float | None) -> None:
    if wait is not None:
        raise too_many_requests(wait)


def too_many_requests(wait: float) -> ProblemError:
    seconds = max(1, math.ceil(wait))
    return ProblemError(
        429,
        detail=f"too many attempts; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
        reason="rate_limited",
    )
