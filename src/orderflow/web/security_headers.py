"""The security headers added to every response (a header the app already set is kept as it is,
so an upstream's own stricter policy, say a CSP with hashes, wins)."""

from __future__ import annotations

from dataclasses import dataclass

Headers = list[tuple[bytes, bytes]]

_ALWAYS = ((b"x-content-type-options", b"nosniff"),)
_HTML = (
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
STRICT_CSP = b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'"
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


@dataclass(frozen=True, slots=True)
class SecurityHeaders:
    """`csp` is sent on HTML pages (None: no policy, e.g. for the API's Swagger UI, whose
    scripts come from a CDN); HSTS only behind TLS."""

    hsts: bool = False
    csp: bytes | None = STRICT_CSP

    def add_to(self, headers: Headers) -> Headers:
        present = {name.lower() for name, _ in headers}
        extra = list(_ALWAYS)
        content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
        if content_type.startswith(b"text/html"):
            extra += _HTML
            if self.csp is not None:
                extra.append((b"content-security-policy", self.csp))
        if self.hsts:
            extra.append(_HSTS)
        headers += [(n, v) for n, v in extra if n not in present]
        return headers
