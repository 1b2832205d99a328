from __future__ import annotations

import pytest

from orderflow.services.gateway.paths import canonical_path
from orderflow.web.problems import ProblemError


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b"/", "/"),
        (b"/api/v1/orders", "/api/v1/orders"),
        (b"/api/v1/orders/", "/api/v1/orders/"),
        (b"/api/a%20b", "/api/a b"),
        (b"/api/caf%C3%A9", "/api/café"),
        (b"/api/..x/x..y", "/api/..x/x..y"),
        (b"/api/%C3%A9t%C3%A9", "/api/\u00e9t\u00e9"),
        (b"/api/a.b/c", "/api/a.b/c"),
    ],
)
def test_canonical_paths_pass(raw: bytes, decoded: str) -> None:
    assert canonical_path(raw) == decoded


@pytest.mark.parametrize(
    "raw",
    [
        b"api",
        b"/api/../admin",
        b"/api/..",
        b"/api/.",
        b"/api/%2e%2e/admin",
        b"/api/%2E/x",
        b"/api%2Fadmin",
        b"/api%5cadmin",
        b"/api\\admin",
        b"//admin",
        b"/api//x",
        b"/api/%252e%252e",
        b"/api/%00",
        b"/api/%0a",
        b"/api/%7f",
        b"/api/%g0",
        b"/api/%",
        b"/api/%ff",
        # path parameters, raw and encoded
        b"/api/admin;x/y",
        b"/api/admin%3bx/y",
        b"/api;/admin",
        # trailing dots and whitespace, raw, encoded and full-width
        b"/api/admin./x",
        b"/api/admin%2e/x",
        b"/api/admin%2E",
        b"/api/x..",
        b"/api/admin%20/x",
        b"/api/%20admin/x",
        b"/api/admin%09/x",
        b"/api/admin%C2%A0/x",
        b"/api/admin%EF%BC%8E/x",
        b"/api%EF%BC%8Fadmin",
        b"/api/%EF%BC%8E%EF%BC%8E/admin",
        # C1 control characters (U+0080-U+009F)
        b"/api/%C2%80",
        b"/api/x%C2%85y",
        b"/api/%C2%9F",
    ],
)
def test_tricks_are_refused(raw: bytes) -> None:
    with pytest.raises(ProblemError) as refused:
        canonical_path(raw)
    assert refused.value.status == 400
    assert refused.value.extra["reason"] == "non_canonical_path"
