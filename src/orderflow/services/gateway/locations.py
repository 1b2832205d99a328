"""URLs in upstream answers (`Location`, `Content-Location`) as a client may see them.

An upstream builds absolute URLs from the Host it was sent, which is its own internal address
(Starlette's trailing-slash redirect answers `Location: http://127.0.0.1:8081/api/...`). No
internal address may reach a client, so an absolute URL whose host is internal is made relative
(path, query and fragment: the client resolves it against the gateway's own origin, RFC 9110
10.2.2). Internal means an upstream's host, `localhost`, or an IP address that is not globally
reachable (loopback, private, link-local). Parsing is as lax as a browser's: `\\` counts as `/`
and `http:/host` or `http:host` names a host. A URL that cannot be parsed is dropped, not
passed on. Anything else (a relative URL, an external site) passes unchanged.

Other headers may carry URLs too (`Link: <http://10.0.0.5:8081/api/x?page=2>; rel="next"`,
`Refresh: 0; url=...`): there each `scheme://authority` naming an internal host is cut, which
leaves the URL relative.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

import structlog

log = structlog.get_logger("orderflow.gateway.proxy")

URL_HEADERS = frozenset({b"location", b"content-location"})
# A special scheme and whatever slashes follow it, or two or more leading slashes: what a
# browser reads as the start of an authority.
_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+")
_AUTHORITY = re.compile(r"^(?:(?P<scheme>https?|wss?):[/\\]*|[/\\]{2,})", re.IGNORECASE)
# An absolute URL's scheme and authority inside another header's value.
_EMBEDDED = re.compile(rb"(?:https?|wss?)://([^/?#\s<>\"',;\\]*)", re.IGNORECASE)


class LocationRewriter:
    def __init__(self, upstreams: Iterable[str]) -> None:
        self._internal = {urlsplit(u).hostname for u in upstreams} - {None}

    def rewrite(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """`headers` (lowercase names) with each URL in them rewritten, or the header dropped."""
        # On the hot path: most answers have no URL in any header.
        if not any(name in URL_HEADERS or b"://" in value for name, value in headers):
            return headers
        kept: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            if name in URL_HEADERS:
                rewritten = self.client_url(value.decode("latin-1"))
                if rewritten is None:
                    log.warning("upstream_url_dropped", header=name.decode())
                    continue
                value = rewritten.encode("latin-1")
            elif b"://" in value:
                value = _EMBEDDED.sub(self._cut_internal, value)
            kept.append((name, value))
        return kept

    def _cut_internal(self, match: re.Match[bytes]) -> bytes:
        authority = match[1].decode("latin-1")
        try:
            host = urlsplit(f"http://{authority}").hostname
        except ValueError:
            return b""  # unparseable: not passed on either
        return b"" if host is None or self._is_internal(host) else match[0]

    def client_url(self, url: str) -> str | None:
        """`url` as a client may see it, or None when it must not be sent at all."""
        if any(not 0x20 < ord(c) < 0x7F for c in url):
            return None  # not a URI reference; whitespace and controls hide hosts from checks
        authority = _AUTHORITY.match(url)
        if authority is None:
            return url  # relative: the client resolves it against the gateway
        scheme = authority["scheme"] or "http"
        try:
            parts = urlsplit(f"{scheme}://{url[authority.end() :].replace(chr(92), '/')}")
            host = parts.hostname
            parts.port  # noqa: B018  # raises ValueError on a malformed port
        except ValueError:
            return None
        if host is None or not self._is_internal(host):
            return url
        return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))

    def _is_internal(self, host: str) -> bool:
        # As a browser reads a host: percent-decoded, a trailing dot ignored.
        host = unquote(host).lower().rstrip(".")
        if host in self._internal or host == "localhost" or host.endswith(".localhost"):
            return True
        address = _address(host)
        return address is not None and not address.is_global


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address `host` denotes, legacy IPv4 forms included (`2130706433`, `0x7f.1`)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None
