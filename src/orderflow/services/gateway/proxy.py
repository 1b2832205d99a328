"""Plain and streamed HTTP through one shared httpx client (connection pool, timeouts).

Small responses with a length are relayed whole (cheaper); anything else, notably SSE, is
streamed chunk by chunk as it arrives, never buffered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import structlog
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from orderflow.services.gateway.forwarding import HOP_BY_HOP
from orderflow.services.gateway.problems import GatewayError
from orderflow.services.gateway.routes import RouteSpec
from orderflow.services.gateway.settings import GatewaySettings

log = structlog.get_logger("orderflow.gateway.proxy")
BUFFER_LIMIT = 256 * 1024
_DROP_FROM_UPSTREAM = HOP_BY_HOP | {b"content-length"}


def create_client(settings: GatewaySettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=_timeout(settings, None),
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        ),
        follow_redirects=False,
        trust_env=False,  # an HTTP(S)_PROXY in the environment must not reroute internal calls
    )


def _timeout(settings: GatewaySettings, read: float | None) -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.connect_timeout,
        read=read or settings.read_timeout,
        write=settings.write_timeout,
        pool=settings.pool_timeout,
    )


def upstream_url(route: RouteSpec, scope_raw_path: bytes, query: bytes) -> str:
    url = route.upstream + scope_raw_path.decode("ascii")
    return f"{url}?{query.decode('latin-1')}" if query else url


async def forward(
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    request: Request,
    route: RouteSpec,
    headers: list[tuple[bytes, bytes]],
) -> Response:
    body = await request.body()
    url = upstream_url(route, request.scope.get("raw_path") or b"/", request.scope["query_string"])
    upstream_request = client.build_request(
        request.method,
        url,
        headers=headers,
        content=body,
        timeout=_timeout(settings, route.read_timeout),
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.TimeoutException as exc:
        log.warning("upstream_timeout", upstream=route.upstream, error=type(exc).__name__)
        raise GatewayError(
            504, "Gateway Timeout", "the upstream did not answer in time", reason="timeout"
        ) from exc
    except httpx.TransportError as exc:
        log.warning("upstream_unreachable", upstream=route.upstream, error=type(exc).__name__)
        raise GatewayError(
            502, "Bad Gateway", "the upstream could not be reached", reason="unreachable"
        ) from exc
    raw_headers = [
        (name, value)
        for name, value in upstream.headers.raw
        if name.lower() not in _DROP_FROM_UPSTREAM
    ]
    length = upstream.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) <= BUFFER_LIMIT:
        try:
            content = b"".join([chunk async for chunk in upstream.aiter_raw()])
        except httpx.HTTPError as exc:
            raise GatewayError(
                502, "Bad Gateway", "the upstream response broke off", reason="broken"
            ) from exc
        finally:
            await upstream.aclose()
        response = Response(content, status_code=upstream.status_code)
        response.raw_headers = [*raw_headers, (b"content-length", str(len(content)).encode())]
        return response
    streamed = StreamingResponse(
        _relay(upstream, route.upstream),
        status_code=upstream.status_code,
        background=BackgroundTask(upstream.aclose),
    )
    streamed.raw_headers = raw_headers
    return streamed


async def _relay(upstream: httpx.Response, name: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        # Headers are gone already; all that is left is to end the stream and say why in logs.
        log.warning("upstream_stream_broken", upstream=name, error=type(exc).__name__)
    finally:
        await upstream.aclose()
