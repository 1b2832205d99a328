"""Access tokens (the `AccessTokens` port): short-lived EdDSA JWTs for clients, and the JWKS that
publishes their keys.

They use the identity-assertion key machinery but their own key directory and audience, so an
access token is never accepted as an assertion by a backend, nor an assertion as an access token.
Rotation: `rotate_access_key` adds a key (new kid) to the key directory and its JWKS. A running
gateway signs with it once it re-reads the JWKS, which it does when the file changed and it next
serves the JWKS, meets a token with a kid it does not know, or verifies any token a second or more
after it last looked (issuing tokens alone never looks); a gateway that starts signs with the newest
key at once. The old public key stays in the JWKS until removed, so tokens it signed keep verifying
until then; once it is removed they are refused as soon as the JWKS is re-read, cached
verifications included.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orderflow.adapters.identity.assertions import (
    JWKS_FILE,
    SigningKey,
    ensure_signing_key,
    generate_signing_key,
)
from orderflow.adapters.identity.cache import VerifiedTokens
from orderflow.domain.identity import Identity
from orderflow.ports.identity import InvalidTokenError

ISSUER = "orderflow-gateway"
AUDIENCE = "orderflow-clients"
# Stream tickets: signed like access tokens, but no access token is accepted as one or vice versa.
TICKET_AUDIENCE = "orderflow-stream-ticket"
_REQUIRED = ["exp", "iat", "nbf", "sub", "aud", "iss", "jti"]


def rotate_access_key(key_dir: Path) -> str:
    return generate_signing_key(key_dir).kid


class EdDsaAccessTokens:
    def __init__(
        self, key_dir: Path, ttl: int, cache_size: int = 8192, recheck_keys: float = 1.0
    ) -> None:
        self._key_dir = key_dir
        # The JWKS file is the source of truth for which keys are trusted; retiring a key there
        # takes effect within `recheck_keys` seconds, cached verifications included.
        self._recheck_keys = recheck_keys
        self._next_check = 0.0
        self._ttl = ttl
        self._signing: SigningKey = ensure_signing_key(key_dir)
        self._jwks_mtime = -1.0
        self._jwks_bytes = b'{"keys":[]}'
        self._public: dict[str, Ed25519PublicKey] = {}
        self._verified = VerifiedTokens(cache_size)
        self._reload_keys()

    @property
    def ttl(self) -> int:
        return self._ttl

    def jwks(self) -> bytes:
        self._reload_keys()
        return self._jwks_bytes

    def issue(self, identity: Identity, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = _claims(identity, AUDIENCE, issued, issued + self._ttl, secrets.token_hex(12))
        return self._sign(claims, "at+jwt")

    def _sign(self, claims: dict[str, Any], typ: str) -> str:
        headers = {"kid": self._signing.kid, "typ": typ}
        return jwt.encode(claims, self._signing.private_key, algorithm="EdDSA", headers=headers)

    def verify(self, token: str) -> Identity:
        return self.verify_until(token)[0]

    def verify_until(self, token: str) -> tuple[Identity, float]:
        """The identity and when the token expires (a stream it opened ends then)."""
        if time.monotonic() >= self._next_check:
            self._reload_keys()
        identity, expires = self._verified.get(token), self._verified.expiry(token)
        if identity is None or expires is None:
            identity, expires = self._verify_signature(token)
            self._verified.put(token, identity, expires)
        return identity, expires

    def issue_ticket(self, identity: Identity, until: float, ttl: float, jti: str) -> str:
        """A single-use stream ticket: the identity, the expiry of the credential it stands in
        for (`cexp`), and a lifetime of its own of `ttl` seconds."""
        issued = int(time.time())
        claims = _claims(identity, TICKET_AUDIENCE, issued, issued + int(ttl), jti)
        claims["cexp"] = int(until)
        return self._sign(claims, "ticket+jwt")

    def redeem_ticket(self, ticket: str) -> tuple[Identity, float, str, float]:
        """(identity, credential expiry, jti, ticket expiry); InvalidTokenError if invalid."""
        if time.monotonic() >= self._next_check:
            self._reload_keys()
        identity, expires, claims = self._decode(ticket, TICKET_AUDIENCE, "ticket")
        until = claims.get("cexp")
        if not isinstance(until, int):
            raise InvalidTokenError("invalid ticket: no credential expiry")
        return identity, float(until), str(claims["jti"]), expires

    def _verify_signature(self, token: str) -> tuple[Identity, float]:
        identity, expires, _ = self._decode(token, AUDIENCE, "access token")
        return identity, expires

    def _decode(
        self, token: str, audience: str, what: str
    ) -> tuple[Identity, float, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
            # Checked before any key is chosen: `none` and HMAC-with-the-public-key never get in.
            if header.get("alg") != "EdDSA":
                raise InvalidTokenError(f"{what} must be signed with EdDSA")
            key = self._key_for(header.get("kid"))
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=audience,
                issuer=ISSUER,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidTokenError(f"{what} expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidTokenError(f"{what} not yet valid") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"invalid {what}: {exc}") from exc
        roles = claims.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidTokenError("invalid access token: roles must be a list of strings")
        email = claims.get("email")
        identity = Identity(
            subject=str(claims["sub"]),
            roles=frozenset(roles),
            email=email if isinstance(email, str) else None,
        )
        return identity, float(claims["exp"]), claims

    def _key_for(self, kid: object) -> Ed25519PublicKey:
        if not isinstance(kid, str):
            raise InvalidTokenError("access token has no key id")
        key = self._public.get(kid)
        if key is None and self._reload_keys():
            key = self._public.get(kid)
        if key is None:
            raise InvalidTokenError("access token signed by an unknown key")
        return key

    def _reload_keys(self) -> bool:
        """Re-read the JWKS when its file changed (a key was rotated or retired)."""
        path = self._key_dir / JWKS_FILE
        self._next_check = time.monotonic() + self._recheck_keys
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return False
        if mtime == self._jwks_mtime:
            return False
        raw = path.read_bytes()
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in jwt.PyJWKSet.from_json(raw.decode()).keys:
            if isinstance(jwk.key, Ed25519PublicKey) and jwk.key_id:
                keys[jwk.key_id] = jwk.key
        self._public, self._jwks_bytes, self._jwks_mtime = keys, raw, mtime
        self._verified.clear()
        # A rotation (a newer key file, published in the JWKS) signs from now on.
        newest = ensure_signing_key(self._key_dir)
        if newest.kid in keys:
            self._signing = newest
        return True


def _claims(
    identity: Identity, audience: str, issued: int, expires: int, jti: str
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": audience,
        "sub": identity.subject,
        "roles": sorted(identity.roles),
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "jti": jti,
    }
    if identity.email:
        claims["email"] = identity.email
    return claims
