"""/metrics on the gateway: its own metrics, for admins only; to anyone else it does not exist.

The gateway is the public port, so its metrics are not public: an admin user's access token, or
an API key with the `metrics` scope (what a Prometheus server holds), gets them; any other
caller, and any bad credential, gets the same 404 as an unknown path, so the endpoint is not
advertised. Without this route `/metrics` would fall through to the catch-all, whose `/` entry
is the storefront upstream (the stream service), and expose that process's metrics publicly.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from orderflow.services.gateway.authn import Principal
from orderflow.services.gateway.state import GatewayState
from orderflow.web.metrics import metrics_endpoint
from orderflow.web.problems import ProblemError, not_found, problem_response

SCOPE = "metrics"


async def gateway_metrics(request: Request) -> Response:
    gw: GatewayState = request.app.state.gateway
    try:
        principal = await gw.authenticator.authenticate(request.headers)
    except ProblemError:
        principal = None
    if not _may_read(principal):
        return problem_response(not_found("no route for this path"))
    return await metrics_endpoint(request)


def _may_read(principal: Principal | None) -> bool:
    if principal is None:
        return False
    if principal.kind == "api_key":
        return SCOPE in principal.identity.scopes
    return principal.is_admin_user
