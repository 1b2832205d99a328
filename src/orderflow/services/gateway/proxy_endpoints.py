"""The catch-all: match the route table, authenticate, authorize, forward (HTTP or WebSocket)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from orderflow.services.gateway import proxy, websocket_proxy
from orderflow.services.gateway.authn import Principal, authorize
from orderflow.services.gateway.forwarding import ANONYMOUS
from orderflow.services.gateway.routes import RouteSpec
from orderflow.services.gateway.state import GatewayState
from orderflow.services.gateway.tickets import PARAM as TICKET_PARAM
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
    params = _params(request.scope["query_string"])
    ticket = _one(params, TICKET_PARAM) if request.method == "GET" else None
    principal = await _principal(gw, request.headers, ticket)
    authorize(route, principal)
    identity = principal.identity if principal else ANONYMOUS
    headers = upstream_headers(request.scope, gw.minter, identity)
    if ticket is not None:
        request.scope["query_string"] = _without(params, TICKET_PARAM).encode("latin-1")
    # A streamed answer (SSE) ends when the credential that opened it expires.
    deadline = principal.expires_at if principal else None
    return await proxy.forward(
        gw.client, gw.settings, request, route, headers, gw.locations, deadline
    )


def _params(query: bytes) -> list[tuple[str, str]]:
    return parse_qsl(query.decode("latin-1"), True)


def _one(params: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in params if k == name]
    if len(values) > 1:
        raise bad_request(f"send {name} once")
    return values[0] if values else None


def _without(params: list[tuple[str, str]], *names: str) -> str:
    return urlencode([(k, v) for k, v in params if k not in names])


async def _principal(
    gw: GatewayState, headers: Headers, ticket: str | None, token: str | None = None
) -> Principal | None:
    if ticket is None:
        return await gw.authenticator.authenticate(headers, token)
    if token is not None or "authorization" in headers or "x-api-key" in headers:
        raise bad_request("send one kind of credentials")
    return await gw.authenticator.admit(gw.tickets.redeem(ticket))


async def proxy_websocket(websocket: WebSocket) -> None:
    gw: GatewayState = websocket.app.state.gateway
    try:
        route = _route(gw, websocket.scope["path"])
        # Browsers cannot set headers on a WebSocket handshake, so the access token may come as
        # a query parameter; it is taken out before the URL goes upstream.
        # (Better: a single-use ticket from POST /auth/ticket, which is worthless once used.)
        params = _params(websocket.scope["query_string"])
        token, ticket = _one(params, TOKEN_PARAM), _one(params, TICKET_PARAM)
        principal = await _principal(gw, websocket.headers, ticket, token)
        authorize(route, principal)
        identity = principal.identity if principal else ANONYMOUS
        headers = upstream_headers(websocket.scope, gw.minter, identity)
        query = _without(params, TOKEN_PARAM, TICKET_PARAM)
        upstream = await websocket_proxy.open_upstream(
            websocket, route, headers, query, gw.settings
        )
    except ProblemError as error:
        await send_problem(websocket.scope, websocket.send, error)
        return
    await websocket_proxy.relay(websocket, upstream, principal.expires_at if principal else None)
