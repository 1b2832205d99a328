"""The gateway ASGI app: the composition root for one gateway process.

Building the app reads keys and the route table (so a bad table fails at start, not on the
first request); the database (migrated), the password hasher and the upstream client are
created in the lifespan.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute

from orderflow.adapters.gateway_db.accounts import AccountRepository
from orderflow.adapters.gateway_db.api_keys import ApiKeys
from orderflow.adapters.gateway_db.database import create_engine, run_migrations
from orderflow.adapters.gateway_db.refresh_tokens import RefreshTokens
from orderflow.adapters.identity.assertions import AssertionSigner, ensure_signing_key
from orderflow.config import Settings
from orderflow.services.gateway import api_key_endpoints, auth_endpoints, proxy_endpoints
from orderflow.services.gateway.authn import Authenticator
from orderflow.services.gateway.forwarding import AssertionMinter
from orderflow.services.gateway.middleware import (
    BodyTooLargeError,
    RequestContextMiddleware,
    RequestShapeMiddleware,
)
from orderflow.services.gateway.passwords import Passwords
from orderflow.services.gateway.problems import GatewayError, problem_response
from orderflow.services.gateway.proxy import create_client
from orderflow.services.gateway.routes import load_route_table
from orderflow.services.gateway.settings import GatewaySettings
from orderflow.services.gateway.state import GatewayState, Limiters
from orderflow.services.gateway.tickets import Tickets
from orderflow.services.gateway.tokens import AccessTokens

log = structlog.get_logger("orderflow.gateway")
READY_TIMEOUT = 3.0  # seconds /readyz waits for the database
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_gateway_app(
    settings: Settings, gateway_settings: GatewaySettings | None = None
) -> Starlette:
    gw_settings = (gateway_settings or GatewaySettings()).resolved(settings)
    routes = load_route_table(gw_settings)
    tokens = AccessTokens(gw_settings.access_keys_dir, gw_settings.access_token_ttl)
    minter = AssertionMinter(
        AssertionSigner(ensure_signing_key(settings.identity_keys_dir)),
        gw_settings.assertion_reuse,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(gw_settings.database_url)
        await run_migrations(engine)
        api_keys = ApiKeys(engine, gw_settings.api_key_cache_seconds)
        async with create_client(gw_settings) as client:
            app.state.gateway = GatewayState(
                settings=gw_settings,
                engine=engine,
                accounts=AccountRepository(engine),
                passwords=Passwords(
                    gw_settings.argon2_time_cost,
                    gw_settings.argon2_memory_cost,
                    gw_settings.argon2_parallelism,
                ),
                tokens=tokens,
                refresh_tokens=RefreshTokens(engine, gw_settings.refresh_token_ttl),
                api_keys=api_keys,
                authenticator=Authenticator(tokens, api_keys),
                minter=minter,
                routes=routes,
                limiters=Limiters.from_settings(gw_settings),
                client=client,
                tickets=Tickets(tokens),
            )
            log.info("gateway_started", routes=[r.spec.prefix for r in routes.routes])
            try:
                yield
            finally:
                await engine.dispose()

    middleware = [
        Middleware(
            RequestContextMiddleware,
            trust_forwarded_for=gw_settings.trust_forwarded_for,
            hsts=gw_settings.hsts,
        ),
        Middleware(RequestShapeMiddleware, max_body_bytes=gw_settings.max_body_bytes),
    ]
    if gw_settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=gw_settings.cors_origins,
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
    return Starlette(
        routes=_routes(),
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            GatewayError: _gateway_error,
            HTTPException: _http_error,
            BodyTooLargeError: _body_too_large,
            Exception: _unexpected,
        },
    )


def _routes() -> list[Route | Mount | WebSocketRoute]:
    auth = [
        Route("/register", auth_endpoints.register, methods=["POST"]),
        Route("/token", auth_endpoints.token, methods=["POST"]),
        Route("/refresh", auth_endpoints.refresh, methods=["POST"]),
        Route("/logout", auth_endpoints.logout, methods=["POST"]),
        Route("/me", auth_endpoints.me, methods=["GET"]),
        Route("/ticket", auth_endpoints.ticket, methods=["POST"]),
        Route("/api-keys", api_key_endpoints.create_api_key, methods=["POST"]),
        Route("/api-keys", api_key_endpoints.list_api_keys, methods=["GET"]),
        Route("/api-keys/{key_id}", api_key_endpoints.revoke_api_key, methods=["DELETE"]),
    ]
    return [
        Mount("/auth", routes=auth),
        Route("/.well-known/jwks.json", _jwks, methods=["GET"]),
        Route("/healthz", _health, methods=["GET"]),
        Route("/readyz", _ready, methods=["GET"]),
        Route("/{path:path}", proxy_endpoints.proxy_http, methods=ALL_METHODS),
        WebSocketRoute("/{path:path}", proxy_endpoints.proxy_websocket),
    ]


async def _jwks(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    return Response(
        state.tokens.jwks(),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def _health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _ready(request: Request) -> Response:
    """Ready when its own database answers. The upstreams are not asked: each has its own
    readiness, and a gateway taken out of rotation for a down API would only turn clear 502s
    into connection errors."""
    state: GatewayState = request.app.state.gateway
    try:
        async with asyncio.timeout(READY_TIMEOUT), state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("gateway database unreachable", error=repr(exc))
        detail = f"gateway database unreachable: {type(exc).__name__}"
        return problem_response(GatewayError(503, "Not ready", detail))
    return JSONResponse({"status": "ready", "database": "ok"})


async def _gateway_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return problem_response(exc)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = GatewayError(exc.status_code, _title(exc.status_code), str(exc.detail))
    if exc.headers:
        error.headers.update(exc.headers)
    return problem_response(error)


async def _body_too_large(request: Request, _exc: Exception) -> Response:
    limit = request.app.state.gateway.settings.max_body_bytes
    return problem_response(
        GatewayError(
            413, "Content Too Large", f"request body exceeds {limit} bytes", reason="body_too_large"
        )
    )


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("gateway_error", error=type(exc).__name__)
    return problem_response(
        GatewayError(500, "Internal Server Error", "the gateway failed", reason="internal")
    )


def _title(status: int) -> str:
    return {404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
