from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
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


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The gateway in front of the echo upstream, with the standard test route table."""
    settings = make_settings(tmp_path)
    upstream_url = f"http://127.0.0.1:{free_port()}"
    gw = gateway_settings(write_routes(tmp_path / "routes.json", standard_routes(upstream_url)))
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
