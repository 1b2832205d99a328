"""Accounts and tokens over real HTTP: register, login, refresh rotation, reuse, logout, me."""

from __future__ import annotations

import jwt
import pytest

from tests.gateway.gateway_harness import PASSWORD, Stack, bearer, customer, login, register

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_register_login_me_and_jwks(stack: Stack) -> None:
    tokens = await customer(stack.client, "Ann@Example.com")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    me = await stack.client.get("/auth/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json()["email"] == "ann@example.com"
    assert me.json()["roles"] == ["customer"]

    jwks = (await stack.client.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(
        tokens["access_token"],
        jwt.PyJWK.from_dict(key).key,
        algorithms=["EdDSA"],
        audience="orderflow-clients",
    )
    assert claims["sub"] == me.json()["id"]
    assert "d" not in key  # public halves only


async def test_register_does_not_reveal_existing_accounts(stack: Stack) -> None:
    body = {"email": "bob@example.com", "password": PASSWORD, "name": "Bob"}
    first = await stack.client.post("/auth/register", json=body)
    again = await stack.client.post("/auth/register", json={**body, "password": "x" * 12})
    assert (first.status_code, first.json()) == (again.status_code, again.json())
    # The original password still holds: the second registration changed nothing.
    await login(stack.client, "bob@example.com")


async def test_unknown_user_and_wrong_password_look_the_same(stack: Stack) -> None:
    await register(stack.client, "cat@example.com")
    wrong = await stack.client.post(
        "/auth/token", data={"username": "cat@example.com", "password": "wrong password"}
    )
    unknown = await stack.client.post(
        "/auth/token", data={"username": "nobody@example.com", "password": "wrong password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["content-type"] == "application/problem+json"


async def test_refresh_rotates_and_reuse_revokes_the_family(stack: Stack) -> None:
    first = await customer(stack.client, "dan@example.com")
    second = await stack.client.post(
        "/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert (await stack.client.get("/auth/me", headers=bearer(rotated))).status_code == 200

    reused = await stack.client.post(
        "/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 401
    assert reused.json()["reason"] == "refresh_token_reused"
    # The thief's reuse also killed the legitimate successor.
    after = await stack.client.post(
        "/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert after.status_code == 401
    # Another login (another family) is unaffected.
    other = await login(stack.client, "dan@example.com")
    fresh = await stack.client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert fresh.status_code == 200


async def test_refresh_grant_on_the_token_endpoint(stack: Stack) -> None:
    first = await customer(stack.client, "eve@example.com")
    response = await stack.client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_logout_revokes_the_refresh_token(stack: Stack) -> None:
    tokens = await customer(stack.client, "fay@example.com")
    out = await stack.client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    response = await stack.client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert response.status_code == 401


async def test_bad_bodies_are_problems(stack: Stack) -> None:
    short = await stack.client.post(
        "/auth/register", json={"email": "gus@example.com", "password": "short", "name": "G"}
    )
    assert short.status_code == 422
    assert "short" not in short.text  # the password is never echoed
    not_json = await stack.client.post(
        "/auth/register", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    form = await stack.client.post("/auth/register", data={"email": "x"})
    assert form.status_code == 415
    bogus = await stack.client.post("/auth/refresh", json={"refresh_token": "ofr_abc.def"})
    assert bogus.status_code == 401
    for response in (short, not_json, form, bogus):
        assert response.headers["content-type"] == "application/problem+json"
    missing = await stack.client.get("/auth/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong_method = await stack.client.get("/auth/token")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"


async def test_bad_bodies_name_the_fields_and_never_echo_what_was_sent(stack: Stack) -> None:
    secret = "my-secret-passphrase-0042"
    bad = await stack.client.post(
        "/auth/register",
        json={"email": "not-an-address", "password": secret, "name": "", "extra": secret},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    locations = {tuple(error["loc"]) for error in bad.json()["errors"]}
    assert locations == {("body", "email"), ("body", "name"), ("body", "extra")}
    assert secret not in bad.text
    assert "not-an-address" not in bad.text

    short = await stack.client.post(
        "/auth/register", json={"email": "hal@example.com", "password": "tiny", "name": "Hal"}
    )
    assert [e["loc"] for e in short.json()["errors"]] == [["body", "password"]]

    # The token endpoint takes RFC 6749's form encoding; refresh and logout take JSON.
    as_json = await stack.client.post(
        "/auth/token", json={"username": "hal@example.com", "password": secret}
    )
    assert as_json.status_code == 415
    assert secret not in as_json.text
    wrong_grant = await stack.client.post("/auth/token", data={"grant_type": "client_credentials"})
    assert wrong_grant.status_code == 422
    assert [e["loc"] for e in wrong_grant.json()["errors"]] == [["body", "grant_type"]]
    as_form = await stack.client.post("/auth/refresh", data={"refresh_token": "ofr_a.b"})
    assert as_form.status_code == 415
    empty = await stack.client.post("/auth/logout", json={})
    assert empty.status_code == 422
    for response in (as_json, wrong_grant, as_form, empty):
        assert response.headers["content-type"] == "application/problem+json"
