"""The headers sent upstream for one request, built from the client's and the gateway's facts."""

from __future__ import annotations

from starlette.types import Scope

from orderflow.domain.identity import Identity
from orderflow.services.gateway.forwarding import AssertionMinter, strip_headers
from orderflow.web.request_context import CLIENT_IP_KEY, REQUEST_ID_KEY


def upstream_headers(
    scope: Scope, minter: AssertionMinter, identity: Identity
) -> list[tuple[bytes, bytes]]:
    host = next((v for k, v in scope["headers"] if k == b"host"), b"")
    headers = strip_headers(scope["headers"])
    headers.append(minter.header(identity))
    headers.append((b"x-request-id", scope[REQUEST_ID_KEY].encode()))
    headers.append((b"x-forwarded-for", scope[CLIENT_IP_KEY].encode()))
    headers.append(
        (b"x-forwarded-proto", b"https" if scope["scheme"] in ("https", "wss") else b"http")
    )
    if host:
        headers.append((b"x-forwarded-host", host))
    return headers
