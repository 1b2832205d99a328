"""create_api_app: the order API as an ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from orderflow import __version__
from orderflow.services.api import problems
from orderflow.services.api.access_log import RequestLog
from orderflow.services.api.context import ApiContext
from orderflow.services.api.limits import BodySizeLimit
from orderflow.services.api.routes import health, orders, products

MAX_BODY_BYTES = 64 * 1024


def create_api_app(ctx: ApiContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ctx.catalog.refresh()
        ctx.intake.start()
        try:
            yield
        finally:
            await ctx.intake.stop()
            await ctx.db.dispose()

    app = FastAPI(
        title="OrderFlow order API",
        version=__version__,
        description="Orders are accepted durably (202) and processed asynchronously. "
        "Errors are application/problem+json.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    problems.install(app)
    app.include_router(orders.router)
    app.include_router(products.router)
    app.include_router(health.router)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(RequestLog)
    return app
