"""What an upstream receives: client identity claims dropped, a fresh signed assertion added."""

from __future__ import annotations

import time
from collections.abc import Iterable

from orderflow.domain.identity import Identity
from orderflow.ports.identity import ASSERTION_HEADER, IdentitySigner

ANONYMOUS = Identity(subject="anonymous", roles=frozenset())

# Headers a backend or a framework might read as "who is calling". Everything in our own
# `x-orderflow-` namespace is dropped too, as are the client's credentials: upstreams get the
# assertion, never the access token or API key itself.
_IDENTITY_HEADERS = frozenset(
    {
        b"authorization",
        b"x-api-key",
        b"proxy-authorization",
        b"remote-user",
        b"x-remote-user",
        b"x-user",
        b"x-user-id",
        b"x-forwarded-user",
        b"x-forwarded-email",
        b"x-forwarded-groups",
        b"x-forwarded-preferred-username",
        b"x-forwarded-access-token",
        b"x-auth-request-user",
        b"x-auth-request-email",
        b"x-auth-request-groups",
        b"x-auth-request-access-token",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-real-ip",
        b"forwarded",
        b"host",
        b"content-length",
    }
)
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
_OWN_NAMESPACE = b"x-orderflow-"
_HEADER = ASSERTION_HEADER.lower().encode()


def header_key(name: bytes) -> bytes:
    """A header name as the laxest backend reads it: case-blind, and `_` the same as `-` (CGI,
    WSGI, PHP and many frameworks turn both into `HTTP_X_FORWARDED_FOR`), so `X_Forwarded_For`
    or `Remote_User` is the header it resembles."""
    return name.lower().replace(b"_", b"-")


def is_identity_header(name: bytes) -> bool:
    key = header_key(name)
    return key in _IDENTITY_HEADERS or key.startswith(_OWN_NAMESPACE)


def strip_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Client headers minus identity, credentials, hop-by-hop and `Connection`-listed ones,
    each compared by `header_key`."""
    headers = list(raw)
    listed = {
        header_key(token.strip())
        for name, value in headers
        if header_key(name) == b"connection"
        for token in value.split(b",")
    }
    return [
        (name, value)
        for name, value in headers
        if not is_identity_header(name)
        and (key := header_key(name)) not in HOP_BY_HOP
        and key not in listed
    ]


class AssertionMinter:
    """One assertion per identity, reused while young: backends cache verification per token."""

    def __init__(self, signer: IdentitySigner, reuse_seconds: float, max_entries: int = 50_000):
        self._signer = signer
        self._reuse = reuse_seconds
        self._max = max_entries
        self._cache: dict[Identity, tuple[str, float]] = {}

    def header(self, identity: Identity) -> tuple[bytes, bytes]:
        now = time.time()
        cached = self._cache.get(identity)
        if cached is None or now - cached[1] >= self._reuse:
            if len(self._cache) >= self._max:
                self._cache.clear()
            cached = (self._signer.sign(identity, now=now), now)
            self._cache[identity] = cached
        return _HEADER, cached[0].encode()
