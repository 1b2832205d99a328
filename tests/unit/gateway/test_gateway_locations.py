"""Which URLs in upstream answers a client may see (the pure part; tests/gateway has it over
real HTTP)."""

from __future__ import annotations

import pytest

from orderflow.services.gateway.locations import LocationRewriter

REWRITER = LocationRewriter(["http://127.0.0.1:8081", "http://Api.Internal:8081"])


@pytest.mark.parametrize(
    ("sent", "seen"),
    [
        ("http://127.0.0.1:8081/api/v1/orders/?a=1#f", "/api/v1/orders/?a=1#f"),
        ("http://127.0.0.1:8081", "/"),
        ("//127.0.0.1:8081/x", "/x"),
        ("http:/127.0.0.1:8081/x", "/x"),
        ("http:127.0.0.1:8081/x", "/x"),
        ("HTTP://API.INTERNAL/x", "/x"),
        ("https://api.internal.:9/x", "/x"),
        ("http:\\\\10.0.0.5\\x", "/x"),
        ("\\\\10.0.0.5/x", "/x"),
        ("ws://127.0.0.1/x", "/x"),
        ("http://[::1]:8081/y", "/y"),
        ("http://[::ffff:127.0.0.1]/y", "/y"),
        ("http://user:pw@127.0.0.1/z", "/z"),
        ("http://localhost:9/x", "/x"),
        ("http://a.localhost/x", "/x"),
        ("http://0x7f000001/x", "/x"),
        ("http://2130706433/x", "/x"),
        ("http://127.1/x", "/x"),
        ("http://%31%32%37.0.0.1/x", "/x"),
        ("http://192.168.1.9/x", "/x"),
        ("http://169.254.169.254/latest", "/latest"),
        # passed unchanged
        ("/api/v1/orders/", "/api/v1/orders/"),
        ("orders/1", "orders/1"),
        ("?page=2", "?page=2"),
        ("https://pay.example.com/checkout?s=1", "https://pay.example.com/checkout?s=1"),
        ("https://8.8.8.8/x", "https://8.8.8.8/x"),
        ("http://deadbeef/x", "http://deadbeef/x"),
        ("mailto:help@example.com", "mailto:help@example.com"),
        # dropped: not a URI reference, or no parseable host
        ("http://127.0.0.1:8081/a b", None),
        ("http://127.0.0.1/\x85", None),
        ("http://[::1/y", None),
        ("http://127.0.0.1:port/", None),
    ],
)
def test_client_url(sent: str, seen: str | None) -> None:
    assert REWRITER.client_url(sent) == seen


def test_url_headers_are_rewritten_and_unsendable_ones_dropped() -> None:
    headers = [
        (b"location", b"http://127.0.0.1:8081/a"),
        (b"x-note", b"https://shop.example/a"),
        (b"content-location", b"http://[::1/"),
    ]
    assert REWRITER.rewrite(headers) == [(b"location", b"/a"), (b"x-note", headers[1][1])]


def test_internal_urls_inside_other_headers_are_cut_to_relative() -> None:
    headers = [
        (b"link", b'<http://127.0.0.1:8081/api/x?page=2>; rel="next", <https://docs.example/a>'),
        (b"refresh", b"0; url=HTTP://10.0.0.5/x"),
        (b"x-note", b"see http://[::1]:9/z"),
        (b"x-plain", b"no url here"),
    ]
    assert REWRITER.rewrite(headers) == [
        (b"link", b'</api/x?page=2>; rel="next", <https://docs.example/a>'),
        (b"refresh", b"0; url=/x"),
        (b"x-note", b"see /z"),
        (b"x-plain", b"no url here"),
    ]
