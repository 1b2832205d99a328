"""The route table: path prefixes to upstreams and who may reach them, from config, not code.

File format (JSON, or TOML with `[[routes]]` tables):
    {"include_defaults": true,
     "routes": [{"prefix": "/reports", "upstream": "http://127.0.0.1:8090",
                 "access": "roles", "roles": ["admin"], "scopes": ["reports:read"],
                 "read_timeout": 120}]}
`access` is `public`, `authenticated` or `roles` (any one of `roles`). `scopes` concern API keys
only: a key needs every listed scope, and reaches no route that lists none (by default `/api`
takes keys with the `orders` scope).
The defaults are `/api` to the order API (`api_upstream`) for signed-in callers; every other
service behind the gateway is one more entry in the file.
With `include_defaults`, entries replace defaults with the same prefix; otherwise the file is the
whole table. `/auth`, `/.well-known`, `/healthz` and `/readyz` are the gateway's own and cannot be
routed. Paths match prefixes on segment boundaries, longest prefix first, case-blind (paths.py's
`route_key`): two prefixes that differ only in case are refused.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orderflow.services.gateway.paths import canonical_path, route_key
from orderflow.services.gateway.settings import GatewaySettings
from orderflow.web.problems import ProblemError

RESERVED = ("/auth", "/.well-known", "/healthz", "/readyz")


def _reserved(key: str) -> bool:
    """`key`: a path's route_key."""
    return any(key == r or key.startswith(r + "/") for r in RESERVED)


class RouteTableError(Exception):
    """The route table file is unreadable or describes an invalid table."""


class RouteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str
    upstream: str
    access: Literal["public", "authenticated", "roles"] = "authenticated"
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    read_timeout: float | None = Field(None, gt=0)

    @field_validator("prefix")
    @classmethod
    def _canonical_prefix(cls, value: str) -> str:
        try:
            canonical_path(value.encode())
        except (ProblemError, UnicodeError) as exc:
            raise ValueError(f"prefix {value!r} is not a canonical path") from exc
        prefix = value.rstrip("/")  # "" is a catch-all; the gateway's own paths still win
        if _reserved(route_key(prefix)):
            raise ValueError(f"prefix {value!r} overlaps the gateway's own paths")
        return prefix

    @field_validator("upstream")
    @classmethod
    def _http_upstream(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(f"upstream {value!r} must be an http(s) URL without a query")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _roles_match_access(self) -> RouteSpec:
        if (self.access == "roles") != bool(self.roles):
            raise ValueError("list roles exactly when access is 'roles'")
        return self


@dataclass(frozen=True, slots=True)
class Route:
    spec: RouteSpec
    key: str  # the prefix as route_key folds it

    def matches(self, key: str) -> bool:
        """`key`: the request path's route_key."""
        return key == self.key or key.startswith(self.key + "/")


class RouteTable:
    def __init__(self, specs: list[RouteSpec]) -> None:
        # Longest prefix first, so `/api/admin` can be stricter than `/api`. Prefixes and paths
        # are compared case-blind: a backend that reads `/api/ADMIN` as `/api/admin` must not
        # be reached under the looser `/api` rule.
        routes = [Route(spec, route_key(spec.prefix)) for spec in specs]
        if len({route.key for route in routes}) != len(routes):
            raise RouteTableError("two prefixes differ only in case")
        self.routes = sorted(routes, key=lambda r: len(r.key), reverse=True)

    def match(self, path: str) -> Route | None:
        key = route_key(path)
        if _reserved(key):  # the gateway's own, whatever a catch-all says
            return None
        for route in self.routes:
            if route.matches(key):
                return route
        return None


def default_specs(settings: GatewaySettings) -> list[RouteSpec]:
    return [
        RouteSpec(
            prefix="/api",
            upstream=settings.api_upstream,
            access="authenticated",
            scopes=frozenset({"orders"}),
        ),
        # The API's documentation, for integrators, without the internal port.
        RouteSpec(prefix="/docs", upstream=settings.api_upstream, access="public"),
        RouteSpec(prefix="/openapi.json", upstream=settings.api_upstream, access="public"),
        RouteSpec(prefix="/ws", upstream=settings.stream_upstream, access="authenticated"),
        RouteSpec(prefix="/events", upstream=settings.stream_upstream, access="authenticated"),
        # Everything else is the storefront page (static files beside the stream service);
        # the longest prefix wins, so it never shadows a route above.
        RouteSpec(prefix="/", upstream=settings.stream_upstream, access="public"),
    ]


def load_route_table(settings: GatewaySettings) -> RouteTable:
    defaults = default_specs(settings)
    if settings.routes_file is None:
        return RouteTable(defaults)
    path = settings.routes_file
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("routes", []), list):
            raise RouteTableError(f"{path}: expected an object with a 'routes' list")
        specs = [RouteSpec.model_validate(entry) for entry in data.get("routes", [])]
    except (OSError, ValueError, ValidationError) as exc:
        raise RouteTableError(f"{path}: {exc}") from exc
    if data.get("include_defaults", False):
        overridden = {spec.prefix for spec in specs}
        specs = [s for s in defaults if s.prefix not in overridden] + specs
    prefixes = [route_key(spec.prefix) for spec in specs]
    if len(prefixes) != len(set(prefixes)):
        raise RouteTableError(f"{path}: a prefix is listed twice (case does not count)")
    return RouteTable(specs)
