from __future__ import annotations

from pathlib import Path

from orderflow.adapters.identity.assertions import (
    AssertionSigner,
    generate_signing_key,
    load_verifier,
)
from orderflow.domain.identity import Identity
from orderflow.services.gateway.forwarding import AssertionMinter, strip_headers


def test_identity_credentials_and_hop_by_hop_headers_are_dropped() -> None:
    headers = [
        (b"x-orderflow-identity", b"forged"),
        (b"X-OrderFlow-Anything", b"x"),
        (b"authorization", b"Bearer t"),
        (b"x-api-key", b"k"),
        (b"x-forwarded-user", b"root"),
        (b"x-forwarded-for", b"1.2.3.4"),
        (b"connection", b"keep-alive, x-secret"),
        (b"x-secret", b"listed in Connection"),
        (b"transfer-encoding", b"chunked"),
        (b"host", b"gw"),
        (b"accept", b"application/json"),
        (b"idempotency-key", b"abc"),
        (b"cookie", b"a=1"),
    ]
    kept = strip_headers(headers)
    assert kept == [
        (b"accept", b"application/json"),
        (b"idempotency-key", b"abc"),
        (b"cookie", b"a=1"),
    ]


def test_lookalike_names_of_dropped_headers_are_dropped_too() -> None:
    # Case and `_` for `-`: what CGI-style backends read as the same header.
    headers = [
        (b"X_OrderFlow_Identity", b"forged"),
        (b"x_forwarded_for", b"10.0.0.1"),
        (b"Remote_User", b"root"),
        (b"X_API_KEY", b"k"),
        (b"Transfer_Encoding", b"chunked"),
        (b"connection", b"X_Secret"),
        (b"x-secret", b"listed in Connection"),
        (b"x_idempotency_key", b"kept: not an identity header"),
    ]
    assert strip_headers(headers) == [(b"x_idempotency_key", b"kept: not an identity header")]


def test_minter_reuses_one_assertion_per_identity(tmp_path: Path) -> None:
    key = generate_signing_key(tmp_path)
    minter = AssertionMinter(AssertionSigner(key), reuse_seconds=40)
    ann = Identity("ann", frozenset({"customer"}))
    bob = Identity("bob", frozenset({"customer"}))
    first, again, other = minter.header(ann), minter.header(ann), minter.header(bob)
    assert first == again
    assert first != other
    verifier = load_verifier(tmp_path / "identity.jwks.json")
    assert verifier.verify(first[1].decode()) == ann
