from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from orderflow.services.gateway.routes import (
    RouteSpec,
    RouteTable,
    RouteTableError,
    load_route_table,
)
from orderflow.services.gateway.settings import GatewaySettings


def _table(*prefixes: str) -> RouteTable:
    return RouteTable(
        [RouteSpec(prefix=p, upstream=f"http://u{i}") for i, p in enumerate(prefixes)]
    )


def test_longest_prefix_wins_on_segment_boundaries() -> None:
    table = _table("/api", "/api/admin", "/admin")
    assert table.match("/api/admin/x").spec.prefix == "/api/admin"  # type: ignore[union-attr]
    assert table.match("/api/orders").spec.prefix == "/api"  # type: ignore[union-attr]
    assert table.match("/api").spec.prefix == "/api"  # type: ignore[union-attr]
    assert table.match("/apix") is None
    assert table.match("/administrator") is None


def _prefix(table: RouteTable, path: str) -> str | None:
    route = table.match(path)
    return None if route is None else route.spec.prefix


@pytest.mark.parametrize(
    "path", ["/api/ADMIN/x", "/API/Admin", "/Api/aDmIn/", "/api/\uff41dmin/x", "/ADMIN/x"]
)
def test_case_and_compatibility_variants_get_the_rule_they_resemble(path: str) -> None:
    # A backend that reads `/api/ADMIN/x` as `/api/admin/x` must not be reached under `/api`.
    table = _table("/api", "/api/admin", "/admin")
    assert _prefix(table, path) in ("/api/admin", "/admin")
    assert _prefix(table, path) == ("/admin" if path.startswith("/ADMIN") else "/api/admin")


def test_gateway_paths_are_its_own_in_any_case() -> None:
    table = _table("/")
    for path in ("/AUTH/token", "/Healthz", "/.Well-Known/jwks.json"):
        assert table.match(path) is None


def test_prefixes_differing_only_in_case_are_refused() -> None:
    with pytest.raises(RouteTableError):
        _table("/admin", "/Admin")


def test_defaults_route_the_services_that_exist() -> None:
    table = load_route_table(
        GatewaySettings(api_upstream="http://a:1", stream_upstream="http://s:2")
    )
    api = table.match("/api/v1/orders")
    assert api is not None
    assert api.spec.upstream == "http://a:1"
    assert api.spec.access == "authenticated"
    assert api.spec.scopes == {"orders"}
    for path in ("/docs", "/openapi.json"):  # the API's documentation, without the internal port
        docs = table.match(path)
        assert docs is not None
        assert (docs.spec.upstream, docs.spec.access) == ("http://a:1", "public")
    for path in ("/ws", "/events"):
        stream = table.match(path)
        assert stream is not None
        assert (stream.spec.upstream, stream.spec.access) == ("http://s:2", "authenticated")
    # Everything else is the public storefront, but never the gateway's own paths, and there is
    # no dashboard yet: /admin is the storefront's 404, not a route to nothing.
    storefront = table.match("/admin/")
    assert storefront is not None
    assert (storefront.spec.prefix, storefront.spec.access) == ("", "public")
    for path in ("/auth/token", "/.well-known/jwks.json", "/healthz", "/readyz"):
        assert table.match(path) is None


@pytest.mark.parametrize(
    "entry",
    [
        {"prefix": "/auth", "upstream": "http://x"},
        {"prefix": "/auth/extra", "upstream": "http://x"},
        {"prefix": "/.well-known", "upstream": "http://x"},
        {"prefix": "/a/../b", "upstream": "http://x"},
        {"prefix": "//a", "upstream": "http://x"},
        {"prefix": "/a", "upstream": "ftp://x"},
        {"prefix": "/a", "upstream": "http://x?q=1"},
        {"prefix": "/a", "upstream": "http://x", "access": "roles"},
        {"prefix": "/a", "upstream": "http://x", "roles": ["admin"]},
        {"prefix": "/a", "upstream": "http://x", "access": "everyone"},
        {"prefix": "/a", "upstream": "http://x", "typo": 1},
    ],
)
def test_invalid_entries(entry: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RouteSpec.model_validate(entry)


def test_file_replaces_or_extends_defaults(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    entry = {"prefix": "/reports", "upstream": "http://r:1", "access": "public"}
    path.write_text(json.dumps({"routes": [entry]}))
    alone = load_route_table(GatewaySettings(routes_file=path))
    assert [r.spec.prefix for r in alone.routes] == ["/reports"]
    path.write_text(json.dumps({"include_defaults": True, "routes": [entry]}))
    both = load_route_table(GatewaySettings(routes_file=path))
    assert {r.spec.prefix for r in both.routes} == {
        "/reports",
        "/api",
        "/docs",
        "/openapi.json",
        "/ws",
        "/events",
        "",
    }


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(
        '[[routes]]\nprefix = "/r"\nupstream = "http://r:1"\naccess = "roles"\nroles = ["admin"]\n'
    )
    table = load_route_table(GatewaySettings(routes_file=path))
    assert table.match("/r/x") is not None


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"routes": {}}',
        '{"routes": [{"prefix": "/a"}]}',
        '{"routes": [{"prefix": "/a", "upstream": "http://a"}, {"prefix": "/a/", "upstream": "http://b"}]}',
        '{"routes": [{"prefix": "/a", "upstream": "http://a"}, {"prefix": "/A", "upstream": "http://b"}]}',
        *(
            f'{{"routes": [{{"prefix": "{own}", "upstream": "http://a"}}]}}'
            for own in ("/auth", "/.well-known/x", "/healthz", "/readyz")
        ),
    ],
)
def test_bad_files_fail_at_start(tmp_path: Path, content: str) -> None:
    path = tmp_path / "routes.json"
    path.write_text(content)
    with pytest.raises(RouteTableError):
        load_route_table(GatewaySettings(routes_file=path))


def test_missing_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(RouteTableError):
        load_route_table(GatewaySettings(routes_file=tmp_path / "nope.json"))
