"""The headers sent upstream for one request, built from the client's and the gateway's facts."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope

from orderflow.domain.identity import Identity
from orderflow.services.gateway.forwarding import AssertionMinter, strip_headers


@dataclass(frozen=True, slots=True)
class RequestFacts:
    request_id: str
    client_ip: str


REQUEST_ID_KEY = "orderflow.request_id"
CLIENT_IP_KEY = "orderflow.client_ip"


def facts(scope: Scope) -> RequestFacts:
    return RequestFacts(scope.get(REQUEST_ID_KEY, ""), scope.get(CLIENT_IP_KEY, ""))


def upstream_headers(
    scope: Scope, minter: AssertionMinter, identity: Identity
) -> list[tuple[bytes, bytes]]:
    known = facts(scope)
    host = next((v for k, v in scope["headers"] if k == b"host"), b"")
    headers = strip_headers(scope["headers"])
    headers.append(minter.header(identity))
    headers.append((b"x-request-id", known.request_id.encode()))
    headers.append((b"x-forwarded-for", known.client_ip.encode()))
    headers.append(
        (b"x-forwarded-proto", b"https" if scope["scheme"] in ("https", "wss") else b"http")
    )
    if host:
        headers.append((b"x-forwarded-host", host))
    return headers
