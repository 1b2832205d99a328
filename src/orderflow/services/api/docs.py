"""The interactive API documentation (`/docs`), served entirely by the API itself.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script; both are
refused by a content security policy that allows only 'self' (the gateway's), and nothing is to
be loaded from the internet at run time. So the page here references Swagger UI's files from the
`fastapi-offline` package (Swagger UI 5, which renders OpenAPI 3.1) under `/docs/assets/`, and
its start-up code is a same-origin script too. Everything lives under `/docs`, the prefix the
gateway routes to the API, with `/openapi.json`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"

_ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API reference</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{docs}/start.js"></script>
</body>
</html>
"""

_START = """window.ui = SwaggerUIBundle({{
  url: "{openapi}",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}});
"""


def install_docs(app: FastAPI, *, title: str, openapi_url: str = "/openapi.json") -> None:
    """Add `/docs`, `/docs/start.js` and `/docs/assets/*` to `app` (created with docs_url=None)."""
    page = _PAGE.format(title=title, assets=ASSETS_PATH, docs=DOCS_PATH)
    start = _START.format(openapi=openapi_url)
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_PATH)
    async def docs_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @router.get(f"{DOCS_PATH}/start.js")
    async def docs_start() -> Response:
        return Response(start, media_type="text/javascript; charset=utf-8")

    app.include_router(router)
    app.mount(ASSETS_PATH, StaticFiles(directory=_ASSETS_DIR), name="docs-assets")
