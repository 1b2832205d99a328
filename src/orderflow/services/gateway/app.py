"""The gateway ASGI app, from its settings and the parts bootstrap built (`GatewayParts`).

A Starlette app whose catch-all route proxies (the hot path: a plain route, nothing per request
that it does not need); the gateway's own endpoints under /auth are a FastAPI app mounted there,
so their bodies are validated by pydantic models. Building the app reads the route table (a bad
table fails at start, not on the first request); the lifespan runs the parts' start (database
migrations) and opens the upstream client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from orderflow.services.gateway import (
    account_endpoints,
    api_key_endpoints,
    auth_endpoints,
    proxy_endpoints,
)
from orderflow.services.gateway.account_state import AccountStates
from orderflow.services.gateway.authn import Authenticator
from orderflow.services.gateway.forwarding import AssertionMinter
from orderflow.services.gateway.locations import LocationRewriter
from orderflow.services.gateway.metrics_endpoint import gateway_metrics
from orderflow.services.gateway.middleware import CanonicalRequestMiddleware
from orderflow.services.gateway.passwords import Passwords
from orderflow.services.gateway.proxy import create_client
from orderflow.services.gateway.rate_limit import Throttles
from orderflow.services.gateway.routes import load_route_table
from orderflow.services.gateway.settings import GatewaySettings
from orderflow.services.gateway.state import GatewayParts, GatewayState
from orderflow.services.gateway.tickets import Tickets
from orderflow.web import problems
from orderflow.web.body_limit import BodyLimitMiddleware
from orderflow.web.health import Readiness
from orderflow.web.request_context import RequestContextMiddleware
from orderflow.web.security_headers import SecurityHeaders

log = structlog.get_logger("orderflow.gateway")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def passwords_for(settings: GatewaySettings) -> Passwords:
    return Passwords(
        settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism
    )


def create_gateway_app(settings: GatewaySettings, parts: GatewayParts) -> Starlette:
    """`settings` as `GatewaySettings.resolved` returns them."""
    routes = load_route_table(settings)
    account_states = AccountStates(parts.accounts, settings.account_state_max_age)
    state = GatewayState(
        settings=settings,
        accounts=parts.accounts,
        passwords=passwords_for(settings),
        tokens=parts.tokens,
        refresh_tokens=parts.refresh_tokens,
        api_keys=parts.api_keys,
        account_states=account_states,
        authenticator=Authenticator(parts.tokens, parts.api_keys, account_states),
        minter=AssertionMinter(parts.signer, settings.assertion_reuse),
        routes=routes,
        locations=LocationRewriter(
            [settings.api_upstream, settings.stream_upstream]
            + [r.spec.upstream for r in routes.routes]
        ),
        throttles=Throttles(parts.rate_limits, settings),
        tickets=Tickets(parts.tokens),
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if parts.on_start is not None:
            await parts.on_start()
        try:
            async with create_client(settings) as client:
                state.client = client
                log.info("gateway_started", routes=[r.spec.prefix for r in routes.routes])
                yield
        finally:
            await parts.rate_limits.aclose()
            if parts.on_stop is not None:
                await parts.on_stop()

    # Ready when its own database answers. The upstreams are not asked: each has its own
    # readiness, and a gateway taken out of rotation for a down API would only turn clear 502s
    # into connection errors.
    readiness = Readiness("gateway", parts.readiness)
    own: list[BaseRoute] = [
        Mount("/auth", app=_auth_app(state)),
        Route("/.well-known/jwks.json", _jwks, methods=["GET"]),
        *readiness.routes(),
        Route("/metrics", gateway_metrics, methods=["GET"]),
        Route("/{path:path}", proxy_endpoints.proxy_http, methods=ALL_METHODS),
        WebSocketRoute("/{path:path}", proxy_endpoints.proxy_websocket),
    ]
    app = Starlette(routes=own, middleware=_middleware(settings), lifespan=lifespan)
    app.state.gateway = state
    problems.install(app)
    return app


def _auth_app(state: GatewayState) -> FastAPI:
    """/auth: no OpenAPI document or docs pages on the public port."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.gateway = state
    problems.install(app)
    app.include_router(auth_endpoints.router)
    app.include_router(api_key_endpoints.router)
    app.include_router(account_endpoints.router)
    return app


def _middleware(settings: GatewaySettings) -> list[Middleware]:
    middleware = [
        Middleware(
            RequestContextMiddleware,
            security=SecurityHeaders(hsts=settings.hsts),
            trust_forwarded_for=settings.trust_forwarded_for,
        ),
        Middleware(CanonicalRequestMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=ALL_METHODS,
                allow_headers=[
                    "authorization",
                    "content-type",
                    "x-api-key",
                    "x-request-id",
                    "idempotency-key",
                ],
                expose_headers=["x-request-id", "retry-after", "location"],
                max_age=600,
            )
        )
    return middleware


async def _jwks(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    return Response(
        state.tokens.jwks(),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )
