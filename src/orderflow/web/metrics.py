"""/metrics for an HTTP service, and the route template a request is counted under.

Requests are counted by the template of the route that matched (`/v1/orders/{order_id}`), never
the raw path, so the number of series stays bounded whatever clients send; a request no route
matched is counted as `unmatched`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import Scope

from orderflow.observability.exposition import CONTENT_TYPE, render

UNMATCHED = "unmatched"


def route_template(scope: Scope, app_root: str = "") -> str:
    """The matched route's path template, with the prefix of any mount it sits under."""
    route = scope.get("route")
    mounted = str(scope.get("root_path", ""))[len(app_root) :]
    if isinstance(route, Mount):  # the mount matched, nothing inside it did
        return f"{mounted}/{UNMATCHED}"
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    return mounted + template


async def metrics_endpoint(_: Request) -> Response:
    return Response(await render(), media_type=CONTENT_TYPE)


def metrics_route() -> Route:
    """For a service's internal port (Prometheus scrapes it without credentials)."""
    return Route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
