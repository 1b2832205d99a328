"""create_api_app: the order API as an ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from orderflow import __version__
from orderflow.services.api.context import ApiContext
from orderflow.services.api.docs import install_docs
from orderflow.services.api.routes import dead_letters, orders, products
from orderflow.web import problems
from orderflow.web.body_limit import BodyLimitMiddleware
from orderflow.web.health import Check, Readiness
from orderflow.web.metrics import metrics_route
from orderflow.web.request_context import RequestContextMiddleware
from orderflow.web.security_headers import SecurityHeaders

MAX_BODY_BYTES = 64 * 1024


def create_api_app(ctx: ApiContext, readiness: Mapping[str, Check] | None = None) -> FastAPI:
    """`readiness`: what /readyz checks (bootstrap passes the database)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ctx.catalog.refresh()
        ctx.intake.start()
        if ctx.backlog is not None:
            await ctx.backlog.start()
        try:
            yield
        finally:
            if ctx.backlog is not None:
                await ctx.backlog.stop()
            await ctx.intake.stop()
            await ctx.close()
            await ctx.db.dispose()

    app = FastAPI(
        title="OrderFlow order API",
        version=__version__,
        description="Orders are accepted durably (202) and processed asynchronously. "
        "Errors are application/problem+json.",
        lifespan=lifespan,
        docs_url=None,  # install_docs: Swagger UI from a package, not a CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.ctx = ctx
    problems.install(app)
    app.include_router(orders.router)
    app.include_router(products.router)
    app.include_router(dead_letters.router)
    app.include_router(Readiness("order API", readiness or {}).router())
    install_docs(app, title=app.title)
    # The internal port only: the gateway's route table sends nothing but /api/... here.
    app.router.routes.append(metrics_route())
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    # The strict policy ('self' only): /docs has no inline script and loads nothing from elsewhere.
    app.add_middleware(RequestContextMiddleware, security=SecurityHeaders())
    return app
