"""The API trusts only a fresh assertion signed by the gateway key: anything else is 401."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orderflow.adapters.identity.assertions import (
    AUDIENCE,
    HEADER,
    ISSUER,
    AssertionSigner,
    SigningKey,
    ensure_signing_key,
)
from tests.integration.api.harness import ORDERS, PRODUCTS, Api, assert_problem, row_counts
from tests.support.system import customer, order_body

WHO = customer()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": WHO.subject,
        "roles": ["customer"],
        "scopes": [],
        "iat": now,
        "exp": now + 60,
    }
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def gateway_signed(key: SigningKey, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key.private_key, "EdDSA", headers={"kid": key.kid})


def unsigned(key: SigningKey) -> str:
    return jwt.encode(claims(), None, "none", headers={"kid": key.kid})


def other_key_same_kid(key: SigningKey) -> str:
    return AssertionSigner(SigningKey(key.kid, Ed25519PrivateKey.generate())).sign(WHO)


def other_key_other_kid(_: SigningKey) -> str:
    return AssertionSigner(SigningKey("intruder", Ed25519PrivateKey.generate())).sign(WHO)


def hmac_with_public_key(key: SigningKey) -> str:
    # The classic algorithm confusion: HS256 "signed" with the published public key.
    secret = key.private_key.public_key().public_bytes_raw()
    return jwt.encode(claims(), secret, "HS256", headers={"kid": key.kid})


def tampered(key: SigningKey) -> str:
    header, payload, signature = AssertionSigner(key).sign(WHO).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(roles=["admin"])).encode())
    forged = forged.rstrip(b"=").decode()
    assert forged != payload
    return f"{header}.{forged}.{signature}"


BAD_TOKENS: list[Any] = [
    pytest.param(lambda key: None, id="missing"),
    pytest.param(lambda key: "", id="empty"),
    pytest.param(lambda key: "garbage", id="garbage"),
    pytest.param(lambda key: "a.b.c", id="three-garbage-parts"),
    pytest.param(other_key_same_kid, id="other-key-same-kid"),
    pytest.param(other_key_other_kid, id="other-key-unknown-kid"),
    pytest.param(tampered, id="tampered-claims"),
    pytest.param(lambda key: AssertionSigner(key).sign(WHO, now=time.time() - 3600), id="expired"),
    pytest.param(lambda key: gateway_signed(key, aud="someone-else"), id="wrong-audience"),
    pytest.param(lambda key: gateway_signed(key, aud=None), id="no-audience"),
    pytest.param(lambda key: gateway_signed(key, iss="evil-gateway"), id="wrong-issuer"),
    pytest.param(lambda key: gateway_signed(key, sub=None), id="no-subject"),
    pytest.param(lambda key: gateway_signed(key, exp=None), id="no-expiry"),
    pytest.param(lambda key: gateway_signed(key, roles="admin"), id="roles-not-a-list"),
    pytest.param(
        lambda key: gateway_signed(key, sub="anonymous", roles=[], scopes=[]), id="anonymous"
    ),
    pytest.param(unsigned, id="alg-none"),
    pytest.param(hmac_with_public_key, id="alg-hs256-public-key"),
]

REQUESTS = [
    pytest.param("POST", ORDERS, order_body([("MUG-WHT", 1)]), id="place"),
    pytest.param("GET", ORDERS, None, id="list"),
    pytest.param("GET", f"{ORDERS}/{uuid.uuid4()}", None, id="read"),
    pytest.param("POST", f"{ORDERS}/{uuid.uuid4()}/cancel", None, id="cancel"),
    pytest.param("GET", PRODUCTS, None, id="products"),
]


@pytest.fixture(scope="module")
def gateway_key(api: Api) -> SigningKey:
    return ensure_signing_key(api.system.data_dir / "keys")


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
@pytest.mark.parametrize("make_token", BAD_TOKENS)
def test_request_without_a_valid_assertion_is_401(
    api: Api,
    gateway_key: SigningKey,
    make_token: Callable[[SigningKey], str | None],
    method: str,
    path: str,
    body: Any,
) -> None:
    before = row_counts(api.system.data_dir)
    token = make_token(gateway_key)
    headers = {} if token is None else {HEADER: token}
    response = api.http.request(method, path, json=body, headers=headers)
    problem = assert_problem(response, 401)
    assert "assertion" in problem["detail"], problem
    assert row_counts(api.system.data_dir) == before


def test_bearer_token_is_not_an_identity(api: Api) -> None:
    token = api.signer.sign(WHO)
    response = api.http.get(ORDERS, headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401)


def test_a_valid_assertion_is_accepted(api: Api, gateway_key: SigningKey) -> None:
    for token in (api.signer.sign(WHO), gateway_signed(gateway_key)):
        response = api.http.get(ORDERS, headers={HEADER: token})
        assert response.status_code == 200, response.text
