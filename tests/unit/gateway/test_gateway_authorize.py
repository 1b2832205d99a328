from __future__ import annotations

import pytest

from orderflow.domain.identity import Identity
from orderflow.services.gateway.authn import Principal, authorize
from orderflow.services.gateway.routes import RouteSpec
from orderflow.web.problems import ProblemError

PUBLIC = RouteSpec(prefix="/p", upstream="http://u", access="public")
MEMBERS = RouteSpec(prefix="/m", upstream="http://u", scopes=frozenset({"orders:read"}))
PEOPLE_ONLY = RouteSpec(prefix="/people", upstream="http://u")
ADMINS = RouteSpec(prefix="/a", upstream="http://u", access="roles", roles=frozenset({"admin"}))
ADMINS_OR_KEYS = RouteSpec(
    prefix="/r",
    upstream="http://u",
    access="roles",
    roles=frozenset({"admin"}),
    scopes=frozenset({"reports:read"}),
)
CUSTOMER = Principal(Identity("c", frozenset({"customer"})), "user")
ADMIN = Principal(Identity("a", frozenset({"admin"})), "user")
READER = Principal(Identity("k", frozenset(), frozenset({"orders:read"})), "api_key")
REPORTER = Principal(Identity("k", frozenset(), frozenset({"reports:read"})), "api_key")


@pytest.mark.parametrize(
    ("route", "principal", "status"),
    [
        (PUBLIC, None, None),
        (PUBLIC, CUSTOMER, None),
        (MEMBERS, None, 401),
        (MEMBERS, CUSTOMER, None),
        (MEMBERS, READER, None),
        (MEMBERS, REPORTER, 403),
        (ADMINS, CUSTOMER, 403),
        (ADMINS, ADMIN, None),
        (ADMINS, READER, 403),
        (ADMINS_OR_KEYS, REPORTER, None),
        (ADMINS_OR_KEYS, READER, 403),
        (ADMINS_OR_KEYS, CUSTOMER, 403),
        (PEOPLE_ONLY, CUSTOMER, None),
        (PEOPLE_ONLY, READER, 403),  # a route naming no scopes takes no key, whatever its scopes
    ],
)
def test_access_rules(route: RouteSpec, principal: Principal | None, status: int | None) -> None:
    if status is None:
        authorize(route, principal)
        return
    with pytest.raises(ProblemError) as refused:
        authorize(route, principal)
    assert refused.value.status == status
