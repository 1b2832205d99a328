"""Forged and broken access tokens, and malformed Authorization headers, all refused with 401."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orderflow.adapters.identity.assertions import (
    AssertionSigner,
    ensure_signing_key,
)
from orderflow.domain.identity import Identity
from tests.gateway.gateway_harness import Stack, admin, bearer, customer

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(sub: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "orderflow-gateway",
        "aud": "orderflow-clients",
        "sub": sub,
        "roles": ["admin"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "x",
    }
    claims.update(overrides)
    return claims


def _real_key(stack: Stack) -> tuple[str, Ed25519PrivateKey]:
    key = ensure_signing_key(stack.gw.access_keys_dir)
    return key.kid, key.private_key


def _sign(stack: Stack, claims: dict[str, Any]) -> str:
    kid, private = _real_key(stack)
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid})


async def _refused(stack: Stack, token: str) -> dict[str, Any]:
    for path in ("/auth/me", "/api/orders", "/admin/page"):
        response = await stack.client.get(path, headers=bearer(token))
        assert response.status_code == 401, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
    body: dict[str, Any] = response.json()
    return body


async def test_a_well_signed_token_is_accepted(stack: Stack) -> None:
    # The control for every forgery below: the same claims, signed properly, get through (for
    # an account that exists: the gateway refuses tokens of deleted accounts).
    root = await admin(stack.client, stack.settings, stack.gw, "forge-control@example.com")
    me = (await stack.client.get("/auth/me", headers=bearer(root))).json()
    token = _sign(stack, _claims(me["id"]))
    response = await stack.client.get("/admin/page", headers=bearer(token))
    assert response.status_code == 200


async def test_token_signed_with_another_key(stack: Stack) -> None:
    kid, _ = _real_key(stack)
    token = jwt.encode(
        _claims("u1"), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
    )
    await _refused(stack, token)


async def test_alg_none(stack: Stack) -> None:
    kid, _ = _real_key(stack)
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    payload = _b64(json.dumps(_claims("u1")).encode())
    await _refused(stack, f"{header}.{payload}.")
    await _refused(stack, f"{header}.{payload}")


async def test_hs256_with_the_public_key_as_secret(stack: Stack) -> None:
    kid, private = _real_key(stack)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwks = (await stack.client.get("/.well-known/jwks.json")).content
    for secret in (public_pem, jwks):
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        payload = _b64(json.dumps(_claims("u1")).encode())
        import hashlib
        import hmac

        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        await _refused(stack, f"{header}.{payload}.{_b64(signature)}")


async def test_expired_token(stack: Stack) -> None:
    past = int(time.time()) - 3600
    body = await _refused(stack, _sign(stack, _claims("u1", iat=past, nbf=past, exp=past + 900)))
    assert "expired" in body["detail"]


async def test_not_yet_valid_token(stack: Stack) -> None:
    future = int(time.time()) + 600
    body = await _refused(stack, _sign(stack, _claims("u1", nbf=future)))
    assert "not yet valid" in body["detail"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "orderflow-internal"},
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"roles": "admin"},
    ],
)
async def test_wrong_audience_issuer_or_claims(stack: Stack, overrides: dict[str, Any]) -> None:
    await _refused(stack, _sign(stack, _claims("u1", **overrides)))


@pytest.mark.parametrize("missing", ["exp", "nbf", "jti", "sub", "aud"])
async def test_missing_required_claim(stack: Stack, missing: str) -> None:
    claims = _claims("u1")
    del claims[missing]
    await _refused(stack, _sign(stack, claims))


async def test_identity_assertion_is_not_an_access_token(stack: Stack) -> None:
    signer = AssertionSigner(ensure_signing_key(stack.settings.identity_keys_dir))
    assertion = signer.sign(Identity("u1", frozenset({"admin"})))
    await _refused(stack, assertion)


async def test_tampered_payload(stack: Stack) -> None:
    tokens = await customer(stack.client, "tam@example.com")
    header, payload, signature = tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin", "customer"]
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    await _refused(stack, forged)
    ok = await stack.client.get("/auth/me", headers=bearer(tokens))
    assert ok.status_code == 200


async def test_unknown_kid(stack: Stack) -> None:
    _, private = _real_key(stack)
    await _refused(
        stack, jwt.encode(_claims("u1"), private, algorithm="EdDSA", headers={"kid": "nope"})
    )
    await _refused(stack, jwt.encode(_claims("u1"), private, algorithm="EdDSA"))


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("Basic dXNlcjpwYXNz", 401),
        ("Bearer", 401),
        ("Bearer a b", 401),
        ("Bearer not-a-jwt", 401),
        ("Bearer a.b.c", 401),
        ("Token abc", 401),
        ("bearer ofk_nope.nope", 401),
    ],
)
async def test_malformed_authorization_headers(stack: Stack, value: str, status: int) -> None:
    response = await stack.client.get("/api/orders", headers={"Authorization": value})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"]


async def test_two_authorization_headers(stack: Stack) -> None:
    tokens = await customer(stack.client, "two@example.com")
    headers = [("Authorization", f"Bearer {tokens['access_token']}")] * 2
    response = await stack.client.get("/api/orders", headers=headers)
    assert response.status_code == 400
    assert response.json()["reason"] == "duplicate_credentials"
