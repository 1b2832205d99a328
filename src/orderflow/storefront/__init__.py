"""The storefront page: plain HTML, CSS and JavaScript from this package, nothing from elsewhere.

Served by the stream process (the page's live status comes from there too) and reached through
the gateway at `/`.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def storefront_routes() -> list[BaseRoute]:
    return [Mount("/", app=StaticFiles(directory=STATIC, html=True), name="storefront")]
