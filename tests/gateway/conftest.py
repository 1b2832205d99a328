from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from gateway_harness import (
    free_port,
    gateway_settings,
    make_settings,
    serve,
    standard_routes,
    write_routes,
)
from upstream_app import create_upstream

from orderflow.config import Settings
from orderflow.services.gateway import GatewaySettings, create_gateway_app


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
    tmp_path: Path, routes: list[dict[str, Any]] | None = None, **overrides: Any
) -> AsyncIterator[Stack]:
    """The gateway in front of the echo upstream (standard test routes unless given)."""
    settings = make_settings(tmp_path)
    upstream_url = f"http://127.0.0.1:{free_port()}"
    table = routes if routes is not None else standard_routes(upstream_url)
    gw = gateway_settings(write_routes(tmp_path / "routes.json", table), **overrides)
    # The gateway creates the identity keys the upstream trusts, so it is built first.
    app = create_gateway_app(settings, gw)
    release = asyncio.Event()
    upstream = create_upstream(settings.identity_jwks_file, release)
    async with (
        serve(upstream, int(upstream_url.rsplit(":", 1)[1])),
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield Stack(url, upstream_url, settings, gw.resolved(settings), client, release)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """One gateway stack per test module (each test uses its own accounts), so modules using it
    mark `loop_scope="module"`."""
    async with build_stack(tmp_path_factory.mktemp("gateway")) as built:
        yield built
