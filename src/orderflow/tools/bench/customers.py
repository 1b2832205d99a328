"""The bench's customers: real accounts logged in through the gateway, or, with `--direct`,
identities signed with the local gateway key as the gateway itself would sign them.

Either way each customer carries the headers its requests send; a keeper renews them before
they expire, so a run may last longer than an access token (15 minutes by default).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

from orderflow.adapters.identity.assertions import HEADER, AssertionSigner, ensure_signing_key
from orderflow.domain.identity import CUSTOMER, Identity

# The gateway limits registrations and logins per client IP; a bench run stays far below the
# login limit, and registers an account only the first time (later runs log in to it).
_RATE_LIMIT_HINT = (
    "the gateway rate-limits registrations (10 per IP per hour) and logins (30 per IP per "
    "minute) by default; raise ORDERFLOW_GATEWAY_REGISTER_IP_LIMIT / "
    "ORDERFLOW_GATEWAY_LOGIN_IP_LIMIT on the gateway, or use fewer --customers"
)
_MAX_RATE_LIMIT_WAIT = 15.0
_RETRY_RENEWAL = 5.0


class CustomerSetupError(Exception):
    """A bench customer could not be registered or logged in."""


@dataclass
class Customer:
    label: str  # the email (or the subject, for signed identities): names it in messages
    headers: dict[str, str]
    renew_at: float = float("inf")  # monotonic time to renew the headers by
    refresh_token: str | None = None


@dataclass
class _Tokens:
    access: str
    refresh: str | None
    renew_at: float


async def login_customers(
    client: aiohttp.ClientSession, count: int, prefix: str, password: str
) -> list[Customer]:
    """Accounts `<prefix>-<n>@orderflow.local`, created on first use; each logged in once."""
    emails = [f"{prefix}-{n}@orderflow.local" for n in range(1, count + 1)]
    # A few at a time: each login costs the gateway a password hash (about 0.1 s of a core).
    gate = asyncio.Semaphore(4)

    async def one(email: str) -> Customer:
        async with gate:
            tokens = await _login_or_register(client, email, password)
        return Customer(email, _bearer(tokens.access), tokens.renew_at, tokens.refresh)

    return list(await asyncio.gather(*(one(e) for e in emails)))


def signed_customers(key_dir: Path, count: int, ttl: int = 3600) -> list[Customer]:
    """Fresh identities each run, signed with the gateway's own key (no gateway in the path)."""
    signer = AssertionSigner(ensure_signing_key(key_dir), ttl=ttl)
    out = []
    for _ in range(count):
        who = Identity(str(uuid.uuid4()), frozenset({CUSTOMER}))
        out.append(Customer(who.subject, {HEADER: signer.sign(who)}))
    return out


async def keep_fresh(client: aiohttp.ClientSession, customers: list[Customer]) -> None:
    """Rotate each customer's tokens when 80% of their lifetime has passed; runs until cancelled.
    Signed identities are not renewed: their hour outlasts any sensible run."""
    while True:
        renewable = [c for c in customers if c.refresh_token is not None]
        if not renewable:
            return
        due = min(c.renew_at for c in renewable)
        await asyncio.sleep(max(1.0, due - time.monotonic()))
        for c in renewable:
            if c.renew_at <= time.monotonic() + 1.0 and c.refresh_token:
                form = {"grant_type": "refresh_token", "refresh_token": c.refresh_token}
                try:
                    tokens = await _token(client, form)
                except (CustomerSetupError, _BadCredentialsError, aiohttp.ClientError):
                    # The token still has a fifth of its life: try again shortly, and let
                    # the run go on (its requests would show 401s if it never succeeds).
                    c.renew_at = time.monotonic() + _RETRY_RENEWAL
                    continue
                c.headers.update(_bearer(tokens.access))
                c.renew_at, c.refresh_token = tokens.renew_at, tokens.refresh


async def _login_or_register(client: aiohttp.ClientSession, email: str, password: str) -> _Tokens:
    form = {"username": email, "password": password}
    try:
        return await _token(client, form)
    except _BadCredentialsError:
        pass
    body = {"email": email, "password": password, "name": "Bench customer"}
    status, text = await _post_waiting(client, "/auth/register", json=body)
    if status >= 400:
        raise CustomerSetupError(f"register {email}: {status} {text}")
    try:
        return await _token(client, form)
    except _BadCredentialsError as exc:
        raise CustomerSetupError(
            f"{email} exists with another password (use --password or --email-prefix)"
        ) from exc


class _BadCredentialsError(Exception):
    pass


async def _token(client: aiohttp.ClientSession, form: dict[str, str]) -> _Tokens:
    started = time.monotonic()
    status, body = await _post_waiting(client, "/auth/token", data=form)
    if status in (400, 401):
        raise _BadCredentialsError(body)
    if status != 200:
        raise CustomerSetupError(f"token: {status} {body}")
    doc = orjson.loads(body)
    # Renew at 80% of the lifetime, counted from before the request was sent.
    lifetime = float(doc.get("expires_in", 900)) * 0.8
    return _Tokens(doc["access_token"], doc.get("refresh_token"), started + lifetime)


async def _post_waiting(
    client: aiohttp.ClientSession,
    path: str,
    json: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
) -> tuple[int, str]:
    """POST, waiting out a short rate limit once; a long one is an error naming the fix."""
    for _ in range(2):
        async with client.post(path, json=json, data=data) as response:
            text = await response.text()
            if response.status != 429:
                return response.status, text
            wait = float(response.headers.get("Retry-After", "60"))
        if wait > _MAX_RATE_LIMIT_WAIT:
            break
        await asyncio.sleep(wait)
    raise CustomerSetupError(f"{path}: rate limited; {_RATE_LIMIT_HINT}")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
