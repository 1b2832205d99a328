"""The catch-all: match the route table, authenticate, authorize, forward (HTTP or WebSocket)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from orderflow.services.gateway import proxy, websocket_proxy
from orderflow.services.gateway.authn import authorize
from orderflow.services.gateway.forwarding import ANONYMOUS
from orderflow.services.gateway.routes import RouteSpec
from orderflow.services.gateway.state import GatewayState
from orderflow.services.gateway.upstream_headers import upstream_headers
from orderflow.web.problems import ProblemError, bad_request, not_found, send_problem

TOKEN_PARAM = "access_token"


def _route(gw: GatewayState, path: str) -> RouteSpec:
    route = gw.routes.match(path)
    if route is None:
        raise not_found("no route for this path")
    return route.spec


async def proxy_http(request: Request) -> Response:
    gw: GatewayState = request.app.state.gateway
    route = _route(gw, request.scope["path"])
    principal = await gw.authenticator.authenticate(request.headers)
    authorize(route, principal)
    identity = principal.identity if principal else ANONYMOUS
    headers = upstream_headers(request.scope, gw.minter, identity)
    return await proxy.forward(gw.client, gw.settings, request, route, headers)


async def proxy_websocket(websocket: WebSocket) -> None:
    gw: GatewayState = websocket.app.state.gateway
    try:
        route = _route(gw, websocket.scope["path"])
        # Browsers cannot set headers on a WebSocket handshake, so the access token may come as
        # a query parameter; it is taken out before the URL goes upstream.
        params = parse_qsl(websocket.scope["query_string"].decode("latin-1"), True)
        tokens = [v for k, v in params if k == TOKEN_PARAM]
        if len(tokens) > 1:
            raise bad_request("send access_token once")
        principal = await gw.authenticator.authenticate(
            websocket.headers, tokens[0] if tokens else None
        )
        authorize(route, principal)
        identity = principal.identity if principal else ANONYMOUS
        headers = upstream_headers(websocket.scope, gw.minter, identity)
        query = urlencode([(k, v) for k, v in params if k != TOKEN_PARAM])
        upstream = await websocket_proxy.open_upstream(
            websocket, route, headers, query, gw.settings
        )
    except ProblemError as error:
        await send_problem(websocket.scope, websocket.send, error)
        return
    await websocket_proxy.relay(websocket, upstream)
