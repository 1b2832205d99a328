"""The security headers added to every response (a header the app already set is kept as it is,
so an upstream's own stricter policy, say a CSP with hashes, wins)."""

from __future__ import annotations

Headers = list[tuple[bytes, bytes]]

_ALWAYS = ((b"x-content-type-options", b"nosniff"),)
_HTML = (
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
STRICT_CSP = b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'"
_HSTS = ((b"strict-transport-security", b"max-age=31536000; includeSubDomains"),)


class SecurityHeaders:
    """`csp` is sent on HTML pages (None: no policy, e.g. for the API's Swagger UI, whose
    scripts come from a CDN); HSTS only behind TLS."""

    __slots__ = ("_html", "_other")

    def __init__(self, *, hsts: bool = False, csp: bytes | None = STRICT_CSP) -> None:
        # Both lists are built once: this runs on every response of the gateway's hot path.
        hsts_headers = _HSTS if hsts else ()
        csp_headers = ((b"content-security-policy", csp),) if csp is not None else ()
        self._other = (*_ALWAYS, *hsts_headers)
        self._html = (*_ALWAYS, *_HTML, *csp_headers, *hsts_headers)

    def add_to(self, headers: Headers) -> Headers:
        present = set()
        content_type = b""
        for name, value in headers:
            lowered = name.lower()
            present.add(lowered)
            if lowered == b"content-type":
                content_type = value
        for header in self._html if content_type.startswith(b"text/html") else self._other:
            if header[0] not in present:
                headers.append(header)
        return headers
