"""A new subsystem behind the gateway by configuration alone: one more route entry."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orderflow.adapters.identity.assertions import HEADER, InvalidAssertionError, load_verifier
from orderflow.bootstrap import build_gateway
from tests.gateway.gateway_harness import (
    admin,
    bearer,
    customer,
    free_port,
    gateway_settings,
    make_settings,
    serve,
    write_routes,
)


def reports_app(jwks: Path) -> Starlette:
    verifier = load_verifier(jwks)

    async def report(request: Request) -> Response:
        try:
            identity = verifier.verify(request.headers.get(HEADER))
        except InvalidAssertionError:
            return JSONResponse({"detail": "no assertion"}, status_code=401)
        return JSONResponse({"report": "sales", "for": identity.subject})

    return Starlette(routes=[Route("/reports/{name}", report)])


async def test_a_route_entry_is_all_it_takes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    reports_port = free_port()
    entry = {
        "prefix": "/reports",
        "upstream": f"http://127.0.0.1:{reports_port}",
        "access": "roles",
        "roles": ["admin"],
    }
    gw = gateway_settings(write_routes(tmp_path / "routes.json", [entry], include_defaults=True))
    app = build_gateway(settings, gw)  # creates the keys the new subsystem trusts
    async with (
        serve(reports_app(settings.identity_jwks_file), reports_port),
        serve(app) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        root = await admin(client, settings, gw.resolved(settings))
        allowed = await client.get("/reports/sales", headers=bearer(root))
        assert allowed.status_code == 200
        assert allowed.json()["report"] == "sales"
        shopper = await customer(client, "shopper@example.com")
        refused = await client.get("/reports/sales", headers=bearer(shopper))
        assert refused.status_code == 403
        assert (await client.get("/reports/sales")).status_code == 401
        # The defaults are still there (the order API is not running here: 502, not 404).
        assert (await client.get("/api/orders", headers=bearer(root))).status_code == 502
