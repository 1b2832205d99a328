"""Plain and streamed HTTP through one shared client session (connection pool, timeouts).

aiohttp rather than httpx here: on the hot path httpx cost the gateway several times the CPU
of the upstream call itself (see bench/gateway_overhead.py), aiohttp a fraction of it.
Small responses with a length are relayed whole (cheaper); anything else, notably SSE, is
streamed chunk by chunk as it arrives, never buffered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import structlog
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from yarl import URL

from orderflow.services.gateway.forwarding import HOP_BY_HOP
from orderflow.services.gateway.locations import LocationRewriter
from orderflow.services.gateway.routes import RouteSpec
from orderflow.services.gateway.settings import GatewaySettings
from orderflow.web.problems import ProblemError

log = structlog.get_logger("orderflow.gateway.proxy")
BUFFER_LIMIT = 256 * 1024
_DROP_FROM_UPSTREAM = HOP_BY_HOP | {b"content-length"}
# aiohttp adds these unless told not to; the client's own values (or none) go upstream instead.
_NO_AUTO_HEADERS = ("Accept-Encoding", "User-Agent", "Content-Type", "Accept")
# Idle pooled connections are let go before the upstream does (uvicorn closes them after 5 s):
# a request sent on one the upstream has just closed fails (a 502 for a POST, never retried).
IDLE_SECONDS = 4.0


def create_client(settings: GatewaySettings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections,
        ttl_dns_cache=300,
        enable_cleanup_closed=True,
        keepalive_timeout=IDLE_SECONDS,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=_timeout(settings, None),
        auto_decompress=False,  # relay the upstream's bytes exactly, encoding included
        trust_env=False,  # an HTTP(S)_PROXY in the environment must not reroute internal calls
        skip_auto_headers=_NO_AUTO_HEADERS,
        cookie_jar=aiohttp.DummyCookieJar(),  # never keep one client's cookies for another
    )


def _timeout(settings: GatewaySettings, read: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None,
        connect=settings.pool_timeout + settings.connect_timeout,
        sock_connect=settings.connect_timeout,
        sock_read=read or settings.read_timeout,
    )


def upstream_url(route: RouteSpec, raw_path: bytes, query: bytes) -> str:
    url = route.upstream + raw_path.decode("ascii")
    return f"{url}?{query.decode('latin-1')}" if query else url


async def forward(
    client: aiohttp.ClientSession,
    settings: GatewaySettings,
    request: Request,
    route: RouteSpec,
    headers: list[tuple[bytes, bytes]],
    locations: LocationRewriter,
    deadline: float | None = None,
) -> Response:
    body = await request.body()
    url = upstream_url(route, request.scope.get("raw_path") or b"/", request.scope["query_string"])
    try:
        upstream = await client.request(
            request.method,
            URL(url, encoded=True),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
            data=body or None,
            allow_redirects=False,
            timeout=_timeout(settings, route.read_timeout),
        )
    except TimeoutError as exc:
        log.warning("upstream_timeout", upstream=route.upstream)
        raise ProblemError(
            504, detail="the upstream did not answer in time", reason="timeout"
        ) from exc
    except aiohttp.ClientError as exc:
        log.warning("upstream_unreachable", upstream=route.upstream, error=type(exc).__name__)
        raise ProblemError(
            502, detail="the upstream could not be reached", reason="unreachable"
        ) from exc
    raw_headers = locations.rewrite(
        [
            (name.lower(), value)
            for name, value in upstream.raw_headers
            if name.lower() not in _DROP_FROM_UPSTREAM
        ]
    )
    length = upstream.content_length
    if length is not None and length <= BUFFER_LIMIT:
        try:
            content = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProblemError(
                502, detail="the upstream response broke off", reason="broken"
            ) from exc
        finally:
            upstream.release()
        response = Response(content, status_code=upstream.status)
        # A HEAD answer declares the length of the body it does not send.
        size = length if request.method == "HEAD" else len(content)
        response.raw_headers = [*raw_headers, (b"content-length", str(size).encode())]
        return response
    streamed = StreamingResponse(
        _relay(upstream, route.upstream, deadline),
        status_code=upstream.status,
        background=BackgroundTask(upstream.release),
    )
    streamed.raw_headers = raw_headers
    return streamed


async def _relay(
    upstream: aiohttp.ClientResponse, name: str, deadline: float | None
) -> AsyncIterator[bytes]:
    """The upstream's chunks as they come, until it ends or the caller's credential expires at
    `deadline` (epoch seconds): an event stream must not outlive the token that opened it."""
    try:
        async with asyncio.timeout(None if deadline is None else max(0.0, deadline - time.time())):
            async for chunk in upstream.content.iter_any():
                yield chunk
    except TimeoutError:
        log.info("stream ended: credential expired or upstream silent", upstream=name)
    except aiohttp.ClientError as exc:
        # Headers are gone already; all that is left is to end the stream and say why in logs.
        log.warning("upstream_stream_broken", upstream=name, error=type(exc).__name__)
    finally:
        upstream.release()
