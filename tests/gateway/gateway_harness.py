"""Real servers for gateway tests: uvicorn on free ports in the test's own event loop."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from orderflow.bootstrap import build_gateway, create_gateway_admin
from orderflow.config import Settings
from orderflow.services.gateway import GatewaySettings
from orderflow.web.header_limits import HeaderLimits, HttpImplementation, protocol_class
from tests.gateway.upstream_app import create_upstream

PASSWORD = "correct horse battery"
# Cheap password hashing for gateways started as processes (`orderflow serve gateway`).
FAST_HASHING_ENV = {
    "ORDERFLOW_GATEWAY_ARGON2_TIME_COST": "1",
    "ORDERFLOW_GATEWAY_ARGON2_MEMORY_COST": "1024",
    "ORDERFLOW_GATEWAY_ARGON2_PARALLELISM": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(
    app: ASGIApp,
    port: int | None = None,
    http: HttpImplementation = "httptools",
    limits: HeaderLimits | None = None,
) -> AsyncIterator[str]:
    """`http`, `limits`: the protocol as `orderflow serve` runs it (the header limits on
    either HTTP implementation uvicorn has)."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=protocol_class(http, limits or HeaderLimits()),
        log_level="warning",
        ws="websockets-sansio",
        lifespan="on",
        # As `orderflow run` must: the gateway is the edge, so no client's X-Forwarded-For is
        # trusted by uvicorn (the gateway's own `trust_forwarded_for` decides that).
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def header_limits(settings: Settings) -> HeaderLimits:
    return HeaderLimits(settings.max_header_bytes, settings.max_header_count)


def make_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, environment="test")


def gateway_settings(routes_file: Path | None = None, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "routes_file": routes_file,
        "argon2_time_cost": 1,
        "argon2_memory_cost": 1024,
        "argon2_parallelism": 1,
        "login_ip_limit": 1000,
        "register_ip_limit": 1000,
        "login_account_limit": 1000,
        "login_client_limits": [(1000, 60)],
        "register_account_limit": 1000,
        "read_timeout": 5.0,
    }
    values.update(overrides)
    return GatewaySettings(**values)


def write_routes(path: Path, routes: list[dict[str, Any]], include_defaults: bool = False) -> Path:
    path.write_text(json.dumps({"include_defaults": include_defaults, "routes": routes}))
    return path


def standard_routes(upstream: str) -> list[dict[str, Any]]:
    return [
        {
            "prefix": "/api",
            "upstream": upstream,
            "access": "authenticated",
            "scopes": ["orders:read"],
        },
        {
            "prefix": "/api/slow",
            "upstream": upstream,
            "access": "authenticated",
            "read_timeout": 0.5,
        },
        {"prefix": "/public", "upstream": upstream, "access": "public"},
        {"prefix": "/ws", "upstream": upstream, "access": "authenticated"},
        {"prefix": "/events", "upstream": upstream, "access": "authenticated"},
        {"prefix": "/admin", "upstream": upstream, "access": "roles", "roles": ["admin"]},
    ]


async def register(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> None:
    response = await client.post(
        "/auth/register", json={"email": email, "password": password, "name": "Test"}
    )
    assert response.status_code == 202, response.text


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def customer(client: httpx.AsyncClient, email: str = "ann@example.com") -> dict[str, Any]:
    await register(client, email)
    return await login(client, email)


async def admin(
    client: httpx.AsyncClient,
    settings: Settings,
    gw: GatewaySettings,
    email: str = "root@example.com",
) -> dict[str, Any]:
    await create_gateway_admin(settings, email, PASSWORD, gateway_settings=gw)
    return await login(client, email)


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def raw_request(base_url: str, request_line: bytes, extra: bytes = b"") -> tuple[int, bytes]:
    """Send bytes exactly as given (httpx would normalise the tricks away)."""
    return await raw_exchange(
        base_url, request_line + b"\r\nHost: gw\r\nConnection: close\r\n" + extra + b"\r\n"
    )


async def raw_exchange(base_url: str, request: bytes) -> tuple[int, bytes]:
    """Send `request` as it is, read until the server closes: (status, the whole answer)."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head + b"\r\n\r\n" + body


@dataclass
class Stack:
    url: str
    upstream_url: str
    settings: Settings
    gw: GatewaySettings
    client: httpx.AsyncClient
    release: asyncio.Event


@asynccontextmanager
async def build_stack(
    tmp_path: Path,
    routes: list[dict[str, Any]] | None = None,
    extra_routes: Sequence[dict[str, Any]] = (),
    http: HttpImplementation = "httptools",
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """The gateway in front of the echo upstream (standard test routes unless given; any
    `extra_routes` are added with `"upstream": "echo"` standing for the echo upstream)."""
    settings = make_settings(tmp_path)
    upstream_url = f"http://127.0.0.1:{free_port()}"
    table = routes if routes is not None else standard_routes(upstream_url)
    table = table + [
        {**r, "upstream": upstream_url if r["upstream"] == "echo" else r["upstream"]}
        for r in extra_routes
    ]
    gw = gateway_settings(write_routes(tmp_path / "routes.json", table), **overrides)
    # The gateway creates the identity keys the upstream trusts, so it is built first.
    app = build_gateway(settings, gw)
    release = asyncio.Event()
    upstream = create_upstream(settings.identity_jwks_file, release)
    async with (
        serve(
            upstream,
            int(upstream_url.rsplit(":", 1)[1]),
            limits=header_limits(settings).behind_gateway(),
        ),
        serve(app, http=http, limits=header_limits(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield Stack(url, upstream_url, settings, gw.resolved(settings), client, release)
