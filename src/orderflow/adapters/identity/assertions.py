"""The identity assertion: a short-lived JWT the gateway signs for every request it forwards.

Format (header `X-OrderFlow-Identity`):
    JOSE header  {"alg": "EdDSA", "typ": "JWT", "kid": <key id>}
    claims       iss="orderflow-gateway", aud="orderflow-internal", sub=<account id>,
                 roles=[...], scopes=[...], email (optional), iat, exp (iat + 60 s by default)

Keys: the gateway holds Ed25519 private keys as PEM files `identity-<kid>.pem` in its key directory
and publishes the public halves in `identity.jwks.json` beside them. Backends load only that JWKS
file, so they can verify but never mint. Both sides read the keys when they start and never again:
a process signs with the newest key file and trusts the JWKS as it was at its start. Rotating is
therefore adding a key (new kid), restarting the backends (they now trust it too), then the gateway
(it signs with it from then on), and later removing the old key from the JWKS.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orderflow.adapters.identity.cache import VerifiedTokens
from orderflow.domain.identity import Identity
from orderflow.ports.identity import ASSERTION_HEADER as HEADER
from orderflow.ports.identity import InvalidAssertionError

__all__ = ["HEADER", "AssertionSigner", "AssertionVerifier", "InvalidAssertionError"]

ISSUER = "orderflow-gateway"
AUDIENCE = "orderflow-internal"
DEFAULT_TTL = 60
JWKS_FILE = "identity.jwks.json"


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey


class AssertionSigner:
    def __init__(self, key: SigningKey, ttl: int = DEFAULT_TTL) -> None:
        self._key = key
        self._ttl = ttl

    def sign(self, identity: Identity, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": identity.subject,
            "roles": sorted(identity.roles),
            "scopes": sorted(identity.scopes),
            "iat": issued,
            "exp": issued + self._ttl,
        }
        if identity.email:
            claims["email"] = identity.email
        return jwt.encode(
            claims, self._key.private_key, algorithm="EdDSA", headers={"kid": self._key.kid}
        )


class AssertionVerifier:
    """Verifies assertions against a JWKS; caches good ones until they expire (the gateway reuses
    one assertion per identity for a while, so most requests skip the signature check)."""

    def __init__(self, public_keys: Mapping[str, Ed25519PublicKey], cache_size: int = 4096) -> None:
        self._keys = dict(public_keys)
        self._verified = VerifiedTokens(cache_size)

    def verify(self, token: str | None) -> Identity:
        if not token:
            raise InvalidAssertionError("missing identity assertion")
        identity = self._verified.get(token)
        if identity is None:
            identity, expires = self._verify_signature(token)
            self._verified.put(token, identity, expires)
        return identity

    def _verify_signature(self, token: str) -> tuple[Identity, float]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise InvalidAssertionError("assertion signed by an unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidAssertionError(f"invalid identity assertion: {exc}") from exc
        roles, scopes = claims.get("roles", []), claims.get("scopes", [])
        if not (isinstance(roles, list) and isinstance(scopes, list)):
            raise InvalidAssertionError(
                "invalid identity assertion: roles and scopes must be lists"
            )
        identity = Identity(
            subject=str(claims["sub"]),
            roles=frozenset(map(str, roles)),
            scopes=frozenset(map(str, scopes)),
            email=claims.get("email"),
        )
        return identity, float(claims["exp"])


# --- key files ------------------------------------------------------------------------------


def generate_signing_key(key_dir: Path) -> SigningKey:
    """Create a new Ed25519 key in `key_dir` and add its public half to the JWKS."""
    key_dir.mkdir(parents=True, exist_ok=True)
    kid = secrets.token_hex(8)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = key_dir / f"identity-{kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    jwks = _read_jwks(key_dir / JWKS_FILE)
    jwks["keys"].append(public_jwk(kid, private.public_key()))
    _write_atomic(key_dir / JWKS_FILE, json.dumps(jwks, indent=2).encode())
    return SigningKey(kid, private)


def ensure_signing_key(key_dir: Path) -> SigningKey:
    """The newest signing key in `key_dir`, created on first use."""
    pems = sorted(key_dir.glob("identity-*.pem"), key=lambda p: p.stat().st_mtime)
    if not pems:
        return generate_signing_key(key_dir)
    newest = pems[-1]
    private = serialization.load_pem_private_key(newest.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise InvalidAssertionError(f"{newest} is not an Ed25519 key")
    return SigningKey(newest.stem.removeprefix("identity-"), private)


def public_jwk(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": kid,
        "use": "sig",
        "alg": "EdDSA",
        "x": _b64(raw),
    }


def load_verifier(jwks_path: Path) -> AssertionVerifier:
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in _read_jwks(jwks_path)["keys"]:
        key = jwt.PyJWK.from_dict(jwk).key
        if isinstance(key, Ed25519PublicKey):
            keys[str(jwk["kid"])] = key
    if not keys:
        raise InvalidAssertionError(f"no Ed25519 keys in {jwks_path}")
    return AssertionVerifier(keys)


def _read_jwks(path: Path) -> dict[str, list[dict[str, str]]]:
    if not path.exists():
        return {"keys": []}
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise InvalidAssertionError(f"{path} is not a JWKS document")
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
